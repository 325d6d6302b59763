//! SAML 2.0 as a service provider: an SP-initiated AuthnRequest over the HTTP-Redirect binding,
//! and the identity provider's signed Response posted to the ACS URL, verified against the
//! certificates of its entity descriptor (`xmldsig`), then checked: status, the request it
//! answers (`InResponseTo`), the audience, the validity window (one minute of clock skew), the
//! bearer confirmation's recipient. The login is read only from the verified bytes.

use base64::Engine;
use roxmltree::Node;
use shared::error::{Error, Result};
use shared::resource::connector::SamlSpec;
use shared::template::Traits;
use time::OffsetDateTime;

use super::xmldsig::{self, Key};
use super::{ExternalIdentity, SsoRequest, http};

const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
/// Clock skew allowed on the validity window.
const SKEW: time::Duration = time::Duration::minutes(1);

/// What the service provider knows of the identity provider.
#[derive(Debug, Clone)]
pub struct Idp {
    /// Its entity ID (the assertions' issuer), when known.
    pub entity_id: Option<String>,
    /// Where AuthnRequests go (HTTP-Redirect).
    pub sso_url: String,
    /// Its signing keys.
    pub keys: Vec<Key>,
}

fn el<'a, 'i>(n: Node<'a, 'i>, ns: &str, name: &str) -> impl Iterator<Item = Node<'a, 'i>> {
    let ns = ns.to_string();
    let name = name.to_string();
    n.children().filter(move |c| c.is_element() && c.tag_name().namespace() == Some(ns.as_str()) && c.tag_name().name() == name)
}

fn one<'a, 'i>(n: Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    el(n, ns, name).next()
}

fn denied(why: &str) -> Error {
    Error::access_denied(format!("the SAML response was refused: {why}"))
}

/// Reads an entity descriptor (an `EntityDescriptor`, or the first IdP one of an `EntitiesDescriptor`).
pub fn parse_entity_descriptor(xml: &str) -> Result<Idp> {
    let doc = xmldsig::parse(xml).map_err(|e| Error::bad_parameter(format!("saml connector: entity_descriptor: {}", e.message)))?;
    let root = doc.root_element();
    let ed = if root.tag_name().name() == "EntityDescriptor" {
        root
    } else {
        root.descendants()
            .find(|n| n.is_element() && n.tag_name().name() == "EntityDescriptor" && one(*n, MD, "IDPSSODescriptor").is_some())
            .ok_or_else(|| Error::bad_parameter("saml connector: entity_descriptor has no EntityDescriptor"))?
    };
    let idp =
        one(ed, MD, "IDPSSODescriptor").ok_or_else(|| Error::bad_parameter("saml connector: entity_descriptor has no IDPSSODescriptor"))?;
    let mut keys = Vec::new();
    for kd in el(idp, MD, "KeyDescriptor") {
        if kd.attribute("use").is_some_and(|u| u != "signing") {
            continue;
        }
        for c in kd.descendants().filter(|d| d.is_element() && d.tag_name().name() == "X509Certificate") {
            keys.push(Key::from_cert(c.text().unwrap_or_default())?);
        }
    }
    let sso_url = el(idp, MD, "SingleSignOnService")
        .find(|s| s.attribute("Binding") == Some(REDIRECT_BINDING))
        .and_then(|s| s.attribute("Location"))
        .unwrap_or_default()
        .to_string();
    Ok(Idp { entity_id: ed.attribute("entityID").map(str::to_string), sso_url, keys })
}

/// The identity provider of a connector: its entity descriptor (inline, or fetched), with
/// `sso` and `cert` overriding.
pub async fn idp_of(spec: &SamlSpec) -> Result<Idp> {
    let mut idp = if !spec.entity_descriptor.is_empty() {
        parse_entity_descriptor(&spec.entity_descriptor)?
    } else if !spec.entity_descriptor_url.is_empty() {
        http::check_url("saml connector entity_descriptor_url", &spec.entity_descriptor_url)?;
        let bytes = http::get_bytes(&spec.entity_descriptor_url).await?;
        parse_entity_descriptor(&String::from_utf8_lossy(&bytes))?
    } else {
        Idp { entity_id: None, sso_url: String::new(), keys: vec![] }
    };
    if !spec.sso.is_empty() {
        idp.sso_url = spec.sso.clone();
    }
    if !spec.cert.is_empty() {
        idp.keys = vec![Key::from_cert(&spec.cert)?];
    }
    if !spec.issuer.is_empty() {
        idp.entity_id = Some(spec.issuer.clone());
    }
    if idp.sso_url.is_empty() {
        return Err(Error::bad_parameter("saml connector: the identity provider has no HTTP-Redirect SingleSignOnService; set spec.sso"));
    }
    if idp.keys.is_empty() {
        return Err(Error::bad_parameter("saml connector: the identity provider has no signing certificate; set spec.cert"));
    }
    http::check_url("saml connector sso", &idp.sso_url)?;
    Ok(idp)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;")
}

/// The AuthnRequest for `req`, deflated and encoded into the identity provider's URL.
pub async fn login_url(spec: &SamlSpec, req: &mut SsoRequest, now: OffsetDateTime) -> Result<String> {
    let idp = idp_of(spec).await?;
    // The request ID is an XML ID: it may not start with a digit.
    req.id = format!("_{}", req.id);
    req.redirect_uri = spec.acs.clone();
    let xml = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="{PROTOCOL}" xmlns:saml="{ASSERTION}" ID="{}" Version="2.0" IssueInstant="{}" Destination="{}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" AssertionConsumerServiceURL="{}"><saml:Issuer>{}</saml:Issuer><samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified" AllowCreate="true"/></samlp:AuthnRequest>"#,
        req.id,
        shared::timefmt::rfc3339_secs(now),
        xml_escape(&idp.sso_url),
        xml_escape(&spec.acs),
        xml_escape(spec.sp_issuer()),
    );
    let deflated = miniz_oxide::deflate::compress_to_vec(xml.as_bytes(), 6);
    let encoded = base64::engine::general_purpose::STANDARD.encode(deflated);
    let sep = if idp.sso_url.contains('?') { '&' } else { '?' };
    Ok(format!("{}{sep}SAMLRequest={}&RelayState={}", idp.sso_url, shared::sso::query_escape(&encoded), shared::sso::query_escape(&req.id)))
}

/// The XML of a posted `SAMLResponse`.
pub fn decode_response(b64: &str) -> Result<String> {
    let clean: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD.decode(clean).map_err(|_| denied("SAMLResponse is not base64"))?;
    String::from_utf8(bytes).map_err(|_| denied("SAMLResponse is not UTF-8"))
}

/// The request a response answers (read before verifying, to find the login; checked again after).
pub fn in_response_to(xml: &str) -> Result<String> {
    let doc = xmldsig::parse(xml)?;
    doc.root_element()
        .attribute("InResponseTo")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| denied("it answers no request of ours (IdP-initiated logins are not accepted)"))
}

fn time_attr(n: Node, name: &str) -> Result<Option<OffsetDateTime>> {
    n.attribute(name).map(|v| shared::timefmt::parse_rfc3339(v).map_err(|_| denied(&format!("{name} is not a time")))).transpose()
}

/// Verifies a response for `req` and says who the user is.
pub fn check_response(spec: &SamlSpec, idp: &Idp, req: &SsoRequest, xml: &str, now: OffsetDateTime) -> Result<ExternalIdentity> {
    let doc = xmldsig::parse(xml)?;
    let response = doc.root_element();
    if response.tag_name().namespace() != Some(PROTOCOL) || response.tag_name().name() != "Response" {
        return Err(denied("the message is not a samlp:Response"));
    }
    let status = one(response, PROTOCOL, "Status").and_then(|s| one(s, PROTOCOL, "StatusCode")).and_then(|c| c.attribute("Value"));
    if status != Some(SUCCESS) {
        return Err(Error::access_denied(format!("the identity provider refused the login: status {}", status.unwrap_or("(none)"))));
    }
    if response.attribute("InResponseTo") != Some(req.id.as_str()) {
        return Err(denied("it answers another request"));
    }
    if let Some(dest) = response.attribute("Destination")
        && dest != spec.acs
    {
        return Err(denied(&format!("its Destination {dest:?} is not this ACS")));
    }
    let assertions: Vec<Node> = el(response, ASSERTION, "Assertion").collect();
    let [assertion] = assertions.as_slice() else {
        return Err(denied("expected exactly one Assertion (encrypted assertions are not supported)"));
    };
    if el(response, ASSERTION, "EncryptedAssertion").next().is_some() {
        return Err(denied("encrypted assertions are not supported"));
    }
    // The assertion signed by itself, or inside a signed response; either way read it from the
    // verified bytes only.
    let canonical_assertion = if one(*assertion, xmldsig::DSIG, "Signature").is_some() {
        xmldsig::verify(xml, &doc, *assertion, &idp.keys)?.canonical
    } else if one(response, xmldsig::DSIG, "Signature").is_some() {
        let v = xmldsig::verify(xml, &doc, response, &idp.keys)?;
        let signed = xmldsig::parse(&v.canonical)?;
        let inner: Vec<Node> = el(signed.root_element(), ASSERTION, "Assertion").collect();
        let [a] = inner.as_slice() else { return Err(denied("expected exactly one Assertion")) };
        xmldsig::exc_c14n(&v.canonical, *a, None, &[])?
    } else {
        return Err(denied("it is not signed"));
    };
    let adoc = xmldsig::parse(&canonical_assertion)?;
    let a = adoc.root_element();
    let issuer = one(a, ASSERTION, "Issuer").and_then(|i| i.text()).unwrap_or_default().trim().to_string();
    if let Some(want) = &idp.entity_id
        && &issuer != want
    {
        return Err(denied(&format!("its issuer {issuer:?} is not {want:?}")));
    }
    let conditions = one(a, ASSERTION, "Conditions").ok_or_else(|| denied("it has no Conditions"))?;
    if let Some(nb) = time_attr(conditions, "NotBefore")?
        && now + SKEW < nb
    {
        return Err(denied("it is not valid yet (NotBefore is in the future; check the clocks)"));
    }
    let until = time_attr(conditions, "NotOnOrAfter")?.ok_or_else(|| denied("its Conditions have no NotOnOrAfter"))?;
    if now - SKEW >= until {
        return Err(denied("it has expired (NotOnOrAfter is in the past)"));
    }
    let audiences: Vec<String> = el(conditions, ASSERTION, "AudienceRestriction")
        .flat_map(|r| el(r, ASSERTION, "Audience").map(|x| x.text().unwrap_or_default().trim().to_string()).collect::<Vec<_>>())
        .collect();
    if !audiences.iter().any(|x| x == spec.audience()) {
        return Err(denied(&format!("its audience {audiences:?} does not include {:?}", spec.audience())));
    }
    let subject = one(a, ASSERTION, "Subject").ok_or_else(|| denied("it has no Subject"))?;
    let name_id = one(subject, ASSERTION, "NameID").and_then(|n| n.text()).unwrap_or_default().trim().to_string();
    if name_id.is_empty() {
        return Err(denied("it has no NameID"));
    }
    let confirmed = el(subject, ASSERTION, "SubjectConfirmation").filter(|c| c.attribute("Method") == Some(BEARER)).any(|c| {
        let Some(d) = one(c, ASSERTION, "SubjectConfirmationData") else { return false };
        let recipient_ok = d.attribute("Recipient").is_none_or(|r| r == spec.acs);
        let irt_ok = d.attribute("InResponseTo").is_none_or(|r| r == req.id);
        let time_ok = time_attr(d, "NotOnOrAfter").ok().flatten().is_some_and(|t| now - SKEW < t);
        recipient_ok && irt_ok && time_ok
    });
    if !confirmed {
        return Err(denied("no bearer SubjectConfirmation for this ACS, this request and now"));
    }
    let mut traits = Traits::new();
    for st in el(a, ASSERTION, "AttributeStatement") {
        for attr in el(st, ASSERTION, "Attribute") {
            let Some(name) = attr.attribute("Name") else { continue };
            let vals: Vec<String> = el(attr, ASSERTION, "AttributeValue")
                .filter_map(|v| v.text().map(|t| t.trim().to_string()))
                .filter(|v| !v.is_empty())
                .collect();
            if !vals.is_empty() {
                traits.entry(name.to_string()).or_default().extend(vals);
            }
        }
    }
    let roles = super::map_roles(&spec.attributes_to_roles, &traits)?;
    Ok(ExternalIdentity { username: name_id, traits, roles })
}

/// Checks a posted response for `req`.
pub async fn callback(spec: &SamlSpec, req: &SsoRequest, xml: &str, now: OffsetDateTime) -> Result<ExternalIdentity> {
    let idp = idp_of(spec).await?;
    check_response(spec, &idp, req, xml, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::resource::connector::ClaimMapping;

    // A response samlify signed for request `_abc123` (tests/idp/saml-idp.mjs), and its IdP's metadata.
    const RESPONSE: &str = include_str!("testdata/samlify-response.xml");
    const METADATA: &str = include_str!("testdata/samlify-metadata.xml");
    const ACS: &str = "https://127.0.0.2:3080/v1/webapi/saml/acs/s";

    fn setup() -> (SamlSpec, Idp, SsoRequest, OffsetDateTime) {
        let spec = SamlSpec {
            acs: ACS.into(),
            attributes_to_roles: vec![ClaimMapping { claim: "groups".into(), value: "admins".into(), roles: vec!["access".into()] }],
            ..Default::default()
        };
        let idp = parse_entity_descriptor(METADATA).unwrap();
        let req = SsoRequest {
            id: "_abc123".into(),
            kind: "saml".into(),
            connector: "s".into(),
            client_redirect_url: String::new(),
            keys: shared::api::PublicKeys { ssh_public_key: String::new(), tls_public_key: String::new() },
            ttl_seconds: 60,
            route_to_cluster: None,
            nonce: None,
            pkce_verifier: None,
            redirect_uri: ACS.into(),
            web: None,
        };
        let doc = xmldsig::parse(RESPONSE).unwrap();
        let issued = shared::timefmt::parse_rfc3339(doc.root_element().attribute("IssueInstant").unwrap()).unwrap();
        (spec, idp, req, issued + time::Duration::seconds(30))
    }

    #[test]
    fn a_samlify_response_verifies() {
        let (spec, idp, req, now) = setup();
        assert_eq!(idp.keys.len(), 1);
        let id = check_response(&spec, &idp, &req, RESPONSE, now).unwrap();
        assert_eq!(id.username, "alice");
        assert_eq!(id.roles, vec!["access"]);
        assert_eq!(id.traits.get("groups"), Some(&vec!["admins".to_string(), "devs".to_string()]));
        assert_eq!(in_response_to(RESPONSE).unwrap(), "_abc123");
    }

    #[test]
    fn changed_unsigned_late_or_misdirected_responses_are_refused() {
        let (spec, idp, req, now) = setup();
        let err = |xml: &str, now: OffsetDateTime| check_response(&spec, &idp, &req, xml, now).unwrap_err().message;
        assert!(err(&RESPONSE.replace(">admins<", ">admin5<"), now).contains("digest does not match"));
        let start = RESPONSE.find("<ds:Signature").unwrap();
        let end = RESPONSE.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        let unsigned = format!("{}{}", &RESPONSE[..start], &RESPONSE[end..]);
        assert!(err(&unsigned, now).contains("not signed"));
        // A signature value with one bit changed.
        let sv = RESPONSE.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
        let mut flipped = RESPONSE.to_string();
        let c = if &RESPONSE[sv..sv + 1] == "A" { "B" } else { "A" };
        flipped.replace_range(sv..sv + 1, c);
        assert!(err(&flipped, now).contains("does not verify"));
        assert!(err(RESPONSE, now + time::Duration::hours(1)).contains("expired"));
        assert!(err(RESPONSE, now - time::Duration::hours(1)).contains("not valid yet"));
        let other_req = SsoRequest { id: "_other".into(), ..req.clone() };
        assert!(check_response(&spec, &idp, &other_req, RESPONSE, now).unwrap_err().message.contains("another request"));
        let other_aud = SamlSpec { audience: "https://elsewhere/acs".into(), ..spec.clone() };
        assert!(check_response(&other_aud, &idp, &req, RESPONSE, now).unwrap_err().message.contains("audience"));
        // Another key than the metadata's.
        let stranger = Idp { keys: vec![Key(vec![0x30, 0x00])], ..idp.clone() };
        assert!(check_response(&spec, &stranger, &req, RESPONSE, now).is_err());
    }

    #[test]
    fn a_wrapped_assertion_is_refused() {
        let (spec, idp, req, now) = setup();
        // An attacker's assertion beside the signed one (the classic wrapping attack).
        let a_start = RESPONSE.find("<saml:Assertion").unwrap();
        let a_end = RESPONSE.find("</saml:Assertion>").unwrap() + "</saml:Assertion>".len();
        let evil = RESPONSE[a_start..a_end].replace(">alice<", ">root<");
        let evil = evil.replacen(" ID=\"", " ID=\"x", 1);
        let wrapped = format!("{}{}{}", &RESPONSE[..a_end], evil, &RESPONSE[a_end..]);
        assert!(check_response(&spec, &idp, &req, &wrapped, now).unwrap_err().message.contains("exactly one Assertion"));
        // The same ID twice.
        let dup = format!(
            "{}<saml:Extra ID=\"{}\"/>{}",
            &RESPONSE[..a_start],
            xmldsig::parse(RESPONSE).unwrap().descendants().find(|n| n.tag_name().name() == "Assertion").unwrap().attribute("ID").unwrap(),
            &RESPONSE[a_start..]
        );
        assert!(check_response(&spec, &idp, &req, &dup, now).is_err());
    }
}
