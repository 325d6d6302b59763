//! The token an app receives (`Teleport-Jwt-Assertion`, reference §3.3): RS256, signed with the
//! key of the cluster that serves the app (its `jwt` CA), verifiable with that cluster's
//! `/.well-known/jwks.json`. Compact JWS is three base64url parts and one RSA signature, which
//! aws-lc-rs (already our TLS crypto) makes; a JWT crate would add a second crypto stack.

use crate::error::{Error, Result};
use base64::Engine as _;
use serde_json::{Value, json};

/// A key that signs tokens, parsed once.
pub struct Signer {
    key: aws_lc_rs::signature::RsaKeyPair,
    kid: String,
}

impl Signer {
    /// The key from the CA's PKCS#8 private key and SPKI public key (both PEM).
    pub fn new(private_pem: &str, public_pem: &str) -> Result<Signer> {
        let der = crate::certs::first_pem_der(private_pem, "PRIVATE KEY")?;
        let key = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| Error::internal(format!("the jwt CA's private key does not parse: {e}")))?;
        let spki = crate::certs::first_pem_der(public_pem, "PUBLIC KEY")?;
        Ok(Signer { key, kid: kid(&spki) })
    }

    /// The key's id (as `/.well-known/jwks.json` names it).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The signed token for `claims`.
    pub fn sign(&self, claims: &Value) -> Result<String> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        let signing_input = format!("{}.{}", b64.encode(header.to_string()), b64.encode(claims.to_string()));
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), signing_input.as_bytes(), &mut sig)
            .map_err(|e| Error::internal(format!("signing a token: {e}")))?;
        Ok(format!("{signing_input}.{}", b64.encode(sig)))
    }
}

/// What signs tokens: the key itself (in the cluster process), or the auth service asked over
/// the API (an app service in a process of its own: the key never leaves the auth service).
pub trait TokenSigner: Send + Sync {
    /// The key's id.
    fn kid(&self) -> &str;
    /// The signed token for `claims`.
    fn sign_token<'a>(&'a self, claims: &'a Value) -> crate::client::BoxFuture<'a, Result<String>>;
}

impl TokenSigner for Signer {
    fn kid(&self) -> &str {
        &self.kid
    }
    fn sign_token<'a>(&'a self, claims: &'a Value) -> crate::client::BoxFuture<'a, Result<String>> {
        Box::pin(async move { self.sign(claims) })
    }
}

/// The key id both the token header and `/.well-known/jwks.json` carry: the first 16 bytes of
/// the SPKI's SHA-256, base64url.
pub fn kid(spki_der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki_der);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}

/// One RSA public key (PEM SubjectPublicKeyInfo) as a JWK.
pub fn jwk(pem: &str) -> Result<serde_json::Value> {
    use base64::Engine as _;
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    let der = crate::certs::first_pem_der(pem, "PUBLIC KEY")?;
    let (_, spki) =
        x509_parser::x509::SubjectPublicKeyInfo::from_der(&der).map_err(|e| Error::internal(format!("unreadable JWT public key: {e}")))?;
    let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
        return Err(Error::internal("the JWT public key is not RSA"));
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let trim = |b: &[u8]| b.iter().skip_while(|x| **x == 0).copied().collect::<Vec<u8>>();
    Ok(serde_json::json!({
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": kid(&der),
        "n": b64.encode(trim(rsa.modulus)),
        "e": b64.encode(trim(rsa.exponent)),
    }))
}

/// Who the token speaks of, as the cluster that serves the app sees them.
pub struct Subject<'a> {
    /// The cluster that signs (`iss`).
    pub issuer: &'a str,
    /// The app's URI (`aud`).
    pub audience: &'a str,
    /// The user here (`remote-<user>-<root>` for a root's user).
    pub username: &'a str,
    /// Their roles here (mapped for a root's user).
    pub roles: &'a [String],
    /// Their traits.
    pub traits: &'a crate::template::Traits,
}

/// The claims, issued at `now` and valid for at most [`crate::app::JWT_TTL_SECS`], never past
/// `not_after` (the user's certificate's end).
pub fn claims(s: &Subject<'_>, now: i64, not_after: i64) -> Value {
    json!({
        "iss": s.issuer,
        "aud": [s.audience],
        "sub": s.username,
        "username": s.username,
        "roles": s.roles,
        "traits": s.traits,
        "nbf": now - 10,
        "iat": now,
        "exp": (now + crate::app::JWT_TTL_SECS).min(not_after),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_with_the_published_key_and_never_outlive_the_certificate() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let signer = Signer::new(&key.serialize_pem(), &key.public_key_pem()).unwrap();
        let traits = crate::template::Traits::new();
        let roles = vec!["visitor".to_string()];
        let s =
            Subject { issuer: "leaf", audience: "http://127.0.0.1:3000", username: "remote-alice-root", roles: &roles, traits: &traits };
        let c = claims(&s, 1000, 1300);
        assert_eq!(c["exp"], 1300, "capped by the certificate");
        assert_eq!(claims(&s, 1000, 99999)["exp"], 1600, "ten minutes at most");
        assert_eq!(
            (c["iss"].as_str(), c["sub"].as_str(), c["aud"][0].as_str()),
            (Some("leaf"), Some("remote-alice-root"), Some("http://127.0.0.1:3000"))
        );
        let token = signer.sign(&c).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header: Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        let spki = crate::certs::first_pem_der(&key.public_key_pem(), "PUBLIC KEY").unwrap();
        assert_eq!(header["kid"], kid(&spki));
        // Verify as an app would: the RSA public key from the SPKI.
        use x509_parser::prelude::FromDer;
        let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki).unwrap();
        let public = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            info.subject_public_key.data.to_vec(),
        );
        let sig = b64.decode(parts[2]).unwrap();
        public.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig).expect("the signature verifies");
        let mut forged = sig.clone();
        forged[10] ^= 1;
        assert!(public.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &forged).is_err());
    }
}
