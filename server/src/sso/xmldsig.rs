//! A strict, small XML signature verifier for SAML: one enveloped RSA signature over one
//! element, exclusive canonicalization, SHA-256/512 digests, and the key from the connector
//! (never from the message's `KeyInfo`).
//!
//! The defences against SAML's classic attacks are structural: no DTD (so no entities), the
//! referenced ID must be unique in the document, and the caller reads the login **only from the
//! canonical bytes that were verified**, parsed again, never from the original document, so a
//! wrapped or injected assertion beside the signed one is never looked at.

use base64::Engine;
use roxmltree::{Document, Node, ParsingOptions};
use shared::error::{Error, Result};

/// The XML signature namespace.
pub const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// Parses XML the way SAML needs: no DTD.
pub fn parse(text: &str) -> Result<Document<'_>> {
    Document::parse_with_options(text, ParsingOptions { allow_dtd: false, nodes_limit: 100_000 })
        .map_err(|e| Error::access_denied(format!("the SAML message is not valid XML: {e}")))
}

fn bad(why: &str) -> Error {
    Error::access_denied(format!("the SAML signature was refused: {why}"))
}

fn child<'a, 'i>(n: Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.is_element() && c.tag_name().namespace() == Some(ns) && c.tag_name().name() == name)
}

/// The element's prefix as written (`saml` in `<saml:Assertion`), empty for none.
fn prefix_of(doc_text: &str, n: Node) -> String {
    let raw = &doc_text[n.range().start + 1..];
    let qname: String = raw.chars().take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/').collect();
    qname.split_once(':').map(|(p, _)| p.to_string()).unwrap_or_default()
}

fn attr_prefix(doc_text: &str, a: &roxmltree::Attribute) -> String {
    let q = &doc_text[a.range_qname()];
    q.split_once(':').map(|(p, _)| p.to_string()).unwrap_or_default()
}

fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            _ => out.push(c),
        }
    }
}

fn escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            _ => out.push(c),
        }
    }
}

/// Exclusive XML canonicalization (without comments) of `node`, leaving out `skip` (the
/// enveloped signature). `inclusive` is the InclusiveNamespaces prefix list.
pub fn exc_c14n(text: &str, node: Node, skip: Option<Node>, inclusive: &[String]) -> Result<String> {
    let mut out = String::new();
    let mut rendered: Vec<(String, String)> = Vec::new(); // (prefix, uri) in force in the output
    c14n_node(text, node, skip, inclusive, &mut rendered, &mut out)?;
    Ok(out)
}

fn c14n_node(
    text: &str,
    n: Node,
    skip: Option<Node>,
    inclusive: &[String],
    rendered: &mut Vec<(String, String)>,
    out: &mut String,
) -> Result<()> {
    if skip.is_some_and(|s| s.id() == n.id()) {
        return Ok(());
    }
    match n.node_type() {
        roxmltree::NodeType::Text => {
            escape_text(n.text().unwrap_or_default(), out);
            Ok(())
        }
        roxmltree::NodeType::Comment => Ok(()),
        roxmltree::NodeType::PI => Err(bad("processing instructions are not accepted")),
        roxmltree::NodeType::Root => Err(bad("the document itself cannot be referenced")),
        roxmltree::NodeType::Element => {
            let prefix = prefix_of(text, n);
            let qname = if prefix.is_empty() { n.tag_name().name().to_string() } else { format!("{prefix}:{}", n.tag_name().name()) };
            // Namespaces visibly used here: the element's own and its attributes' prefixes,
            // plus the inclusive list's, when in scope.
            let mut used: Vec<String> = vec![prefix.clone()];
            for a in n.attributes() {
                let p = attr_prefix(text, &a);
                if !p.is_empty() && p != "xml" && !used.contains(&p) {
                    used.push(p);
                }
            }
            for p in inclusive {
                let p = if p == "#default" { String::new() } else { p.clone() };
                if !used.contains(&p) && n.namespaces().any(|ns| ns.name().unwrap_or_default() == p) {
                    used.push(p);
                }
            }
            let mut decls: Vec<(String, String)> = Vec::new();
            for p in &used {
                let uri = n.namespaces().find(|ns| ns.name().unwrap_or_default() == p.as_str()).map(|ns| ns.uri().to_string());
                let uri = match uri {
                    Some(u) => u,
                    None if p.is_empty() => String::new(),
                    None => return Err(bad(&format!("prefix {p:?} is not declared"))),
                };
                let current = rendered.iter().rev().find(|(rp, _)| rp == p).map(|(_, u)| u.clone());
                let needed = match &current {
                    Some(u) => *u != uri,
                    None => !(p.is_empty() && uri.is_empty()),
                };
                if needed {
                    decls.push((p.clone(), uri));
                }
            }
            decls.sort();
            let mut attrs: Vec<(String, String, String)> = n
                .attributes()
                .map(|a| {
                    let p = attr_prefix(text, &a);
                    let q = if p.is_empty() { a.name().to_string() } else { format!("{p}:{}", a.name()) };
                    (
                        a.namespace().unwrap_or_default().to_string(),
                        a.name().to_string(),
                        format!("{q}=\"{}\"", {
                            let mut v = String::new();
                            escape_attr(a.value(), &mut v);
                            v
                        }),
                    )
                })
                .collect();
            attrs.sort();
            out.push('<');
            out.push_str(&qname);
            for (p, uri) in &decls {
                if p.is_empty() {
                    out.push_str(" xmlns=\"");
                } else {
                    out.push_str(" xmlns:");
                    out.push_str(p);
                    out.push_str("=\"");
                }
                escape_attr(uri, out);
                out.push('"');
            }
            for (_, _, a) in &attrs {
                out.push(' ');
                out.push_str(a);
            }
            out.push('>');
            let mark = rendered.len();
            rendered.extend(decls);
            for c in n.children() {
                c14n_node(text, c, skip, inclusive, rendered, out)?;
            }
            rendered.truncate(mark);
            out.push_str("</");
            out.push_str(&qname);
            out.push('>');
            Ok(())
        }
    }
}

fn inclusive_prefixes(transform_or_method: Node) -> Vec<String> {
    transform_or_method
        .children()
        .find(|c| c.is_element() && c.tag_name().name() == "InclusiveNamespaces")
        .and_then(|c| c.attribute("PrefixList"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// A signing key: the RSA public key (PKCS#1 DER) of one of the identity provider's certificates.
#[derive(Debug, Clone)]
pub struct Key(pub Vec<u8>);

impl Key {
    /// The key of a base64 (or PEM) X.509 certificate.
    pub fn from_cert(cert: &str) -> Result<Key> {
        let b64: String =
            cert.lines().filter(|l| !l.starts_with("-----")).collect::<String>().chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| Error::bad_parameter(format!("the identity provider's certificate is not base64: {e}")))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| Error::bad_parameter(format!("the identity provider's certificate does not parse: {e}")))?;
        Ok(Key(parsed.public_key().subject_public_key.data.to_vec()))
    }
}

/// What a verified signature covers.
#[derive(Debug)]
pub struct Verified {
    /// The ID of the signed element.
    pub id: String,
    /// The signed element, canonical, without its signature: the only bytes to read.
    pub canonical: String,
}

/// Verifies the signature that is a direct child of `signed` and references it.
pub fn verify(text: &str, doc: &Document, signed: Node, keys: &[Key]) -> Result<Verified> {
    let id = signed.attribute("ID").ok_or_else(|| bad("the signed element has no ID"))?.to_string();
    let owners = doc.descendants().filter(|d| d.is_element() && d.attributes().any(|a| a.name() == "ID" && a.value() == id)).count();
    if owners != 1 {
        return Err(bad("the signed ID is not unique"));
    }
    let sigs: Vec<Node> = signed
        .children()
        .filter(|c| c.is_element() && c.tag_name().namespace() == Some(DSIG) && c.tag_name().name() == "Signature")
        .collect();
    let [sig] = sigs.as_slice() else { return Err(bad("expected exactly one signature on the signed element")) };
    let info = child(*sig, DSIG, "SignedInfo").ok_or_else(|| bad("no SignedInfo"))?;
    let c14n = child(info, DSIG, "CanonicalizationMethod").ok_or_else(|| bad("no CanonicalizationMethod"))?;
    if c14n.attribute("Algorithm") != Some(EXC_C14N) {
        return Err(bad("only exclusive canonicalization (xml-exc-c14n#) is accepted"));
    }
    let method = child(info, DSIG, "SignatureMethod").and_then(|m| m.attribute("Algorithm")).ok_or_else(|| bad("no SignatureMethod"))?;
    let alg: &'static dyn aws_lc_rs::signature::VerificationAlgorithm = match method {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" => &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA512,
        other => return Err(bad(&format!("signature method {other} is not accepted (use rsa-sha256)"))),
    };
    let refs: Vec<Node> = info.children().filter(|c| c.is_element() && c.tag_name().name() == "Reference").collect();
    let [reference] = refs.as_slice() else { return Err(bad("expected exactly one Reference")) };
    if reference.attribute("URI") != Some(format!("#{id}").as_str()) {
        return Err(bad("the signature does not reference the signed element"));
    }
    let mut inclusive = Vec::new();
    let mut enveloped = false;
    if let Some(transforms) = child(*reference, DSIG, "Transforms") {
        for t in transforms.children().filter(|c| c.is_element()) {
            match t.attribute("Algorithm") {
                Some(ENVELOPED) => enveloped = true,
                Some(EXC_C14N) => inclusive = inclusive_prefixes(t),
                other => return Err(bad(&format!("transform {} is not accepted", other.unwrap_or("(none)")))),
            }
        }
    }
    if !enveloped {
        return Err(bad("the signature must be enveloped"));
    }
    let digest_alg = match child(*reference, DSIG, "DigestMethod").and_then(|m| m.attribute("Algorithm")) {
        Some("http://www.w3.org/2001/04/xmlenc#sha256") => &aws_lc_rs::digest::SHA256,
        Some("http://www.w3.org/2001/04/xmlenc#sha512") => &aws_lc_rs::digest::SHA512,
        other => return Err(bad(&format!("digest method {} is not accepted (use sha256)", other.unwrap_or("(none)")))),
    };
    let b64 = |n: Option<Node>, what: &str| -> Result<Vec<u8>> {
        let t: String = n.and_then(|n| n.text()).unwrap_or_default().chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD.decode(t).map_err(|_| bad(&format!("{what} is not base64")))
    };
    let want_digest = b64(child(*reference, DSIG, "DigestValue"), "DigestValue")?;
    let canonical = exc_c14n(text, signed, Some(*sig), &inclusive)?;
    let got = aws_lc_rs::digest::digest(digest_alg, canonical.as_bytes());
    if got.as_ref() != want_digest.as_slice() {
        return Err(bad("the digest does not match: the message was changed after it was signed"));
    }
    let signature = b64(child(*sig, DSIG, "SignatureValue"), "SignatureValue")?;
    let info_c14n = exc_c14n(text, info, None, &inclusive_prefixes(c14n))?;
    let ok = keys.iter().any(|k| aws_lc_rs::signature::UnparsedPublicKey::new(alg, &k.0).verify(info_c14n.as_bytes(), &signature).is_ok());
    if !ok {
        return Err(bad("the signature does not verify with the identity provider's certificate"));
    }
    Ok(Verified { id, canonical })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_sorts_and_scopes_namespaces() {
        let text = r#"<r:Root xmlns:r="urn:r" xmlns:x="urn:x" xmlns:unused="urn:u"><x:A b="2" a="1&amp;&quot;" x:c="3"><!-- c --><B>t&gt;&#13;</B></x:A></r:Root>"#;
        let doc = parse(text).unwrap();
        let a = doc.descendants().find(|n| n.tag_name().name() == "A").unwrap();
        assert_eq!(exc_c14n(text, a, None, &[]).unwrap(), r#"<x:A xmlns:x="urn:x" a="1&amp;&quot;" b="2" x:c="3"><B>t&gt;&#xD;</B></x:A>"#);
        let root = doc.root_element();
        assert_eq!(
            exc_c14n(text, root, None, &[]).unwrap(),
            r#"<r:Root xmlns:r="urn:r"><x:A xmlns:x="urn:x" a="1&amp;&quot;" b="2" x:c="3"><B>t&gt;&#xD;</B></x:A></r:Root>"#
        );
        assert_eq!(
            exc_c14n(text, root, None, &["unused".into()]).unwrap().split('>').next().unwrap(),
            r#"<r:Root xmlns:r="urn:r" xmlns:unused="urn:u""#
        );
    }

    #[test]
    fn dtds_are_refused() {
        assert!(parse(r#"<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>"#).is_err());
    }
}
