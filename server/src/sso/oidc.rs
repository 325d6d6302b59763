//! OpenID Connect: the authorization code flow with a nonce and PKCE (the `openidconnect` crate
//! over our HTTP client), the ID token checked (signature from the provider's JWKS, `iss`,
//! `aud`, expiry, nonce), userinfo merged when the provider has it (same `sub`; the ID token's
//! claims win), and the claims mapped to roles with the connector's `claims_to_roles`.

use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope,
};
use serde_json::Value;
use shared::error::{Error, Result};
use shared::resource::connector::OidcSpec;
use shared::template::Traits;

use super::{ExternalIdentity, SsoRequest, http};

/// Our HTTP client in the shape `openidconnect` calls.
async fn client_call(req: openidconnect::HttpRequest) -> std::result::Result<openidconnect::HttpResponse, http::HttpError> {
    http::send(req).await
}

async fn discover(spec: &OidcSpec) -> Result<CoreProviderMetadata> {
    http::check_url("oidc connector issuer_url", &spec.issuer_url)?;
    let issuer = IssuerUrl::new(spec.issuer_url.clone()).map_err(|e| Error::bad_parameter(format!("issuer_url: {e}")))?;
    CoreProviderMetadata::discover_async(issuer, &client_call)
        .await
        .map_err(|e| Error::connection_problem(format!("reading the OpenID configuration of {}: {}", spec.issuer_url, chain(&e))))
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn redirect(spec: &OidcSpec, host: &str) -> Result<String> {
    super::pick_redirect_url(&spec.redirect_url.values(), host).ok_or_else(|| Error::bad_parameter("oidc connector has no redirect_url"))
}

/// The provider's login URL for `req` (which gets its nonce, PKCE verifier and redirect URL).
pub async fn login_url(spec: &OidcSpec, req: &mut SsoRequest, host: &str) -> Result<String> {
    let meta = discover(spec).await?;
    let redirect_uri = redirect(spec, host)?;
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(spec.client_id.clone()),
        Some(ClientSecret::new(spec.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect_uri.clone()).map_err(|e| Error::bad_parameter(format!("redirect_url: {e}")))?);
    let state = req.id.clone();
    let nonce = shared::certs::random_hex(16);
    let n = nonce.clone();
    let mut auth = client
        .authorize_url(AuthenticationFlow::<CoreResponseType>::AuthorizationCode, move || CsrfToken::new(state), move || Nonce::new(n))
        .add_scope(Scope::new("email".into()));
    for s in &spec.scope {
        if s != "openid" && s != "email" {
            auth = auth.add_scope(Scope::new(s.clone()));
        }
    }
    if spec.pkce_mode != "disabled" {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        auth = auth.set_pkce_challenge(challenge);
        req.pkce_verifier = Some(verifier.secret().clone());
    }
    // Teleport's default prompt is select_account; `none` means "send no prompt".
    match spec.prompt.as_deref() {
        None | Some("") => auth = auth.add_extra_param("prompt", "select_account"),
        Some("none") => {}
        Some(p) => auth = auth.add_extra_param("prompt", p.to_string()),
    }
    if let Some(m) = &spec.max_age {
        let d = shared::timefmt::parse_duration(m)?;
        auth = auth.add_extra_param("max_age", d.as_secs().to_string());
    }
    if !spec.acr_values.is_empty() {
        auth = auth.add_extra_param("acr_values", spec.acr_values.clone());
    }
    let (url, _, _) = auth.url();
    req.nonce = Some(nonce);
    req.redirect_uri = redirect_uri;
    Ok(url.to_string())
}

/// The claims of a JWT whose signature was already verified (the payload, decoded).
fn payload_claims(jwt: &str) -> Result<serde_json::Map<String, Value>> {
    use base64::Engine;
    let part = jwt.split('.').nth(1).ok_or_else(|| Error::access_denied("malformed ID token"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| Error::access_denied("malformed ID token"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Error::access_denied("malformed ID token")),
    }
}

/// Claims as traits: strings and lists of strings (Teleport's `OIDCClaimsToTraits`).
pub fn claims_to_traits(claims: &serde_json::Map<String, Value>) -> Traits {
    let mut t = Traits::new();
    for (k, v) in claims {
        match v {
            Value::String(s) => {
                t.insert(k.clone(), vec![s.clone()]);
            }
            Value::Array(a) => {
                let vals: Vec<String> = a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect();
                if vals.len() == a.len() && !vals.is_empty() {
                    t.insert(k.clone(), vals);
                }
            }
            _ => {}
        }
    }
    t
}

/// The user name from the claims: `username_claim`, else a verified `email`.
pub fn username(spec: &OidcSpec, claims: &serde_json::Map<String, Value>) -> Result<String> {
    if !spec.username_claim.is_empty() {
        return claims.get(&spec.username_claim).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_string).ok_or_else(|| {
            Error::access_denied(format!("the identity provider sent no {:?} claim (username_claim)", spec.username_claim))
        });
    }
    let email = claims
        .get("email")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::access_denied("the identity provider sent no email claim; set username_claim, or add the email scope"))?;
    let verified = claims.get("email_verified").and_then(|v| v.as_bool()).unwrap_or(false);
    if !verified && !spec.allow_unverified_email {
        return Err(Error::access_denied(format!(
            "email {email:?} is not verified by the identity provider (set allow_unverified_email to accept it)"
        )));
    }
    Ok(email.to_string())
}

/// Checks the provider's callback for `req` and says who the user is.
pub async fn callback(spec: &OidcSpec, req: &SsoRequest, query: &[(String, String)]) -> Result<ExternalIdentity> {
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Some(err) = get("error") {
        let desc = get("error_description").unwrap_or_default();
        return Err(Error::access_denied(format!(
            "the identity provider refused the login: {err}{}",
            if desc.is_empty() { String::new() } else { format!(": {desc}") }
        )));
    }
    let code = get("code").filter(|c| !c.is_empty()).ok_or_else(|| Error::access_denied("the identity provider's answer has no code"))?;
    let meta = discover(spec).await?;
    let userinfo_url = meta.userinfo_endpoint().map(|u| u.url().to_string());
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(spec.client_id.clone()),
        Some(ClientSecret::new(spec.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(req.redirect_uri.clone()).map_err(|e| Error::bad_parameter(format!("redirect_url: {e}")))?);
    let mut exchange = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| Error::bad_parameter(format!("the identity provider has no token endpoint: {e}")))?;
    if let Some(v) = &req.pkce_verifier {
        exchange = exchange.set_pkce_verifier(PkceCodeVerifier::new(v.clone()));
    }
    let tokens = exchange.request_async(&client_call).await.map_err(|e| {
        let detail = match &e {
            openidconnect::RequestTokenError::ServerResponse(r) => {
                format!("{}{}", r.error(), r.error_description().map(|d| format!(": {d}")).unwrap_or_default())
            }
            other => chain(other),
        };
        Error::access_denied(format!("exchanging the code at the identity provider failed: {detail}"))
    })?;
    let id_token = openidconnect::TokenResponse::id_token(&tokens)
        .ok_or_else(|| Error::access_denied("the identity provider returned no ID token"))?;
    let nonce = Nonce::new(req.nonce.clone().unwrap_or_default());
    let verified = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .map_err(|e| Error::access_denied(format!("the ID token was refused: {}", chain(&e))))?;
    let sub = verified.subject().as_str().to_string();
    let mut claims = payload_claims(&id_token.to_string())?;
    // Userinfo adds what the ID token lacks, for the same subject only.
    if let Some(url) = userinfo_url
        && http::check_url("userinfo_endpoint", &url).is_ok()
    {
        let bearer = format!("Bearer {}", tokens.access_token().secret());
        match http::get_json(&url, &[("Authorization", bearer.as_str())]).await {
            Ok(Value::Object(info)) => {
                if info.get("sub").and_then(|s| s.as_str()) != Some(sub.as_str()) {
                    return Err(Error::access_denied("the userinfo endpoint answered for another subject"));
                }
                for (k, v) in info {
                    claims.entry(k).or_insert(v);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "userinfo not read"),
        }
    }
    let username = username(spec, &claims)?;
    let traits = claims_to_traits(&claims);
    let roles = super::map_roles(&spec.claims_to_roles, &traits)?;
    Ok(ExternalIdentity { username, traits, roles })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_become_traits_and_names() {
        let claims: serde_json::Map<String, Value> = serde_json::from_value(serde_json::json!({
            "sub": "1", "email": "alice@example.com", "email_verified": true, "groups": ["admins", "devs"],
            "logins": ["ubuntu"], "n": 3, "mixed": ["a", 1]
        }))
        .unwrap();
        let t = claims_to_traits(&claims);
        assert_eq!(t.get("groups"), Some(&vec!["admins".to_string(), "devs".to_string()]));
        assert_eq!(t.get("email"), Some(&vec!["alice@example.com".to_string()]));
        assert!(!t.contains_key("n") && !t.contains_key("mixed"));
        let spec = OidcSpec::default();
        assert_eq!(username(&spec, &claims).unwrap(), "alice@example.com");
        let mut unverified = claims.clone();
        unverified.insert("email_verified".into(), Value::Bool(false));
        assert!(username(&spec, &unverified).unwrap_err().message.contains("not verified"));
        let by_sub = OidcSpec { username_claim: "sub".into(), ..Default::default() };
        assert_eq!(username(&by_sub, &unverified).unwrap(), "1");
    }
}
