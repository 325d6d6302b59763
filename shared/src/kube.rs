//! Kubernetes access, the pure parts: what a request to an API server asks for, whether a
//! role's `kubernetes_resources` cover it, which user and groups the caller is sent as, and
//! the `Status` answers `kubectl` prints. The engine that applies them lives with the cluster
//! that owns the Kubernetes cluster (`server/src/access/kube`); `tsh` and `tctl` use the names.
//!
//! Facts from Teleport (reference `kube-app-db.md` §2): impersonation rules and their messages,
//! `system:authenticated` always among the groups, the default user (the Teleport user name,
//! `remote-<user>-<root>` for a root's user at a leaf) when the roles name none.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::labels::value_matches;

/// The TLS server name `tsh kube login` writes into the kubeconfig (`tls-server-name`): the
/// proxy tells Kubernetes traffic apart from its API and web pages by it, on its one port, and
/// presents a certificate from the cluster's host CA for it (Teleport's TLS routing name, with
/// the `teleport.cluster.local` suffix it uses when the proxy's address is an IP).
pub const PROXY_SNI: &str = "kube-teleport-proxy-alpn.teleport.cluster.local";

/// The group every caller is sent with, so that discovery keeps working.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// Verbs a `kubernetes_resources` entry may name.
pub const VERBS: &[&str] = &["*", "get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "exec", "portforward"];

/// One entry of a role's `kubernetes_resources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeResource {
    /// `pod`, `deployment`, `namespace` (everything in the namespaces it matches), `*`; plural
    /// names (`pods`) as role v8 writes them are read too.
    pub kind: String,
    /// Namespace glob or `^regex$`.
    #[serde(default)]
    pub namespace: String,
    /// Object name glob or `^regex$`.
    #[serde(default)]
    pub name: String,
    /// Kubernetes verbs, `exec`, `portforward` or `*`. None: every verb (role v6).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verbs: Vec<String>,
    /// API group (role v8), `*` or empty for any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_group: String,
}

impl KubeResource {
    /// Validates an entry at role creation.
    pub fn check(&self, side: &str) -> Result<()> {
        let field = format!("{side}.kubernetes_resources");
        if self.kind.is_empty() {
            return Err(Error::bad_parameter(format!("{field}: every entry needs a kind, such as kind: pod")));
        }
        for v in &self.verbs {
            if !VERBS.contains(&v.as_str()) {
                return Err(Error::bad_parameter(format!("{field}: unknown verb {v:?}; known verbs: {}", VERBS.join(", "))));
            }
        }
        for (what, pattern) in [("kind", &self.kind), ("namespace", &self.namespace), ("name", &self.name)] {
            if pattern.len() > 253 {
                return Err(Error::bad_parameter(format!("{field}: {what} is longer than 253 characters")));
            }
            if pattern != "*" && !pattern.is_empty() {
                crate::labels::compile_expression(pattern)
                    .map_err(|e| Error::bad_parameter(format!("{field}: {what} {pattern:?} is not a valid expression: {e}")))?;
            }
        }
        Ok(())
    }

    /// Every object, every verb: what a role without `kubernetes_resources` allows.
    pub fn everything() -> KubeResource {
        KubeResource { kind: "*".into(), namespace: "*".into(), name: "*".into(), verbs: vec!["*".into()], api_group: String::new() }
    }

    fn verb_ok(&self, verb: &str) -> bool {
        self.verbs.is_empty() || self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    fn group_ok(&self, group: &str) -> bool {
        self.api_group.is_empty() || value_matches(&self.api_group, group)
    }

    /// Whether the entry covers `req`.
    pub fn matches(&self, req: &KubeRequest) -> bool {
        if !self.verb_ok(&req.verb) || !self.group_ok(&req.api_group) {
            return false;
        }
        let glob = |p: &str, v: &str| p == "*" || (!p.is_empty() && value_matches(p, v));
        if kind_is(&self.kind, "namespaces") && self.kind != "*" {
            // `kind: namespace` grants everything inside the namespaces it names, and the
            // namespace object itself.
            if req.resource == "namespaces" {
                return req.name.is_empty() || glob(&self.name, &req.name) || glob(&self.namespace, &req.name);
            }
            return !req.namespace.is_empty() && (glob(&self.name, &req.namespace) || glob(&self.namespace, &req.namespace));
        }
        if self.kind != "*" && !kind_is(&self.kind, &req.resource) {
            return false;
        }
        // A cluster-wide object is in no namespace: only `namespace: '*'` reaches it.
        let ns_ok = if req.namespace.is_empty() { self.namespace == "*" } else { glob(&self.namespace, &req.namespace) };
        // A list or watch names no object: the entry's namespace and kind decide.
        let name_ok = req.name.is_empty() || glob(&self.name, &req.name);
        ns_ok && name_ok
    }
}

/// Whether a role's kind (`pod`, `pods`, `*`) names the resource `plural` (as in the URL).
fn kind_is(kind: &str, plural: &str) -> bool {
    if kind == "*" || kind.eq_ignore_ascii_case(plural) {
        return true;
    }
    singular(plural).eq_ignore_ascii_case(kind)
}

/// `pods` → `pod`, `ingresses` → `ingress`, `networkpolicies` → `networkpolicy`.
pub fn singular(plural: &str) -> String {
    if let Some(stem) = plural.strip_suffix("ies") {
        return format!("{stem}y");
    }
    for es in ["sses", "xes", "ches", "shes"] {
        if plural.ends_with(es) {
            return plural[..plural.len() - 2].to_string();
        }
    }
    if plural == "endpoints" {
        return plural.to_string();
    }
    plural.strip_suffix('s').unwrap_or(plural).to_string()
}

/// What one API request asks for, read from its method, path and query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KubeRequest {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`,
    /// `exec` (exec and attach), `portforward`.
    pub verb: String,
    /// API group, empty for the core group.
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// Namespace, empty for cluster-wide objects.
    pub namespace: String,
    /// Resource, plural as in the URL (`pods`).
    pub resource: String,
    /// Object name, empty for a list.
    pub name: String,
    /// `exec`, `attach`, `log`, `portforward`, `status`...
    pub subresource: String,
}

impl KubeRequest {
    /// Reads a request; `None` for a path that names no object (discovery: `/version`, `/api`,
    /// `/apis/apps/v1`, `/openapi/v3`...), which every caller may read.
    pub fn parse(method: &str, path: &str, query: &str) -> Option<KubeRequest> {
        let segs: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        if segs.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
            return None;
        }
        let (api_group, api_version, rest) = match segs.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return None,
        };
        let (namespace, rest): (&str, &[&str]) = match rest {
            ["namespaces", ns, more @ ..] if !more.is_empty() => (ns, more),
            _ => ("", rest),
        };
        let (resource, name, subresource) = match rest {
            [] => return None,
            [resource] => (*resource, "", ""),
            [resource, name] => (*resource, *name, ""),
            [resource, name, sub] => (*resource, *name, *sub),
            _ => return None,
        };
        let watch = query.split('&').any(|kv| kv == "watch=true" || kv == "watch=1");
        let verb = match (method, subresource) {
            (_, "exec" | "attach") => "exec",
            (_, "portforward") => "portforward",
            ("GET" | "HEAD", _) if watch => "watch",
            ("GET" | "HEAD", _) if name.is_empty() => "list",
            ("GET" | "HEAD", _) => "get",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", _) if name.is_empty() => "deletecollection",
            ("DELETE", _) => "delete",
            _ => "unknown",
        };
        Some(KubeRequest {
            verb: verb.into(),
            api_group: api_group.into(),
            api_version: api_version.into(),
            namespace: namespace.into(),
            resource: resource.into(),
            name: name.into(),
            subresource: subresource.into(),
        })
    }

    /// `pods/web-1` in `default` as people say it, for messages.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {}", self.verb, self.resource);
        if !self.name.is_empty() {
            s.push('/');
            s.push_str(&self.name);
        }
        if !self.subresource.is_empty() {
            s.push('/');
            s.push_str(&self.subresource);
        }
        if !self.namespace.is_empty() {
            s.push_str(&format!(" in namespace {:?}", self.namespace));
        }
        s
    }
}

/// Whether `path` is one every caller may read: the API server's discovery and health
/// documents. Anything else that [`KubeRequest::parse`] does not read as an object is treated as
/// unknown (only a role that allows every object reaches it), never as discovery: a trailing
/// slash or a doubled one must not slip past the resource rules.
pub fn is_discovery(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else { return false };
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return false;
    }
    matches!(
        segs.as_slice(),
        ["version"] | ["api"] | ["api", _] | ["apis"] | ["apis", _] | ["apis", _, _] | ["healthz" | "livez" | "readyz"] | ["openapi", ..]
    )
}

/// Whether roles' `kubernetes_resources` (allow and deny, of the roles that reach the cluster)
/// let `req` through. Deny entries win; an object-less namespace read (`get`/`list`/`watch`
/// namespaces) is allowed where some allow entry reaches into that namespace, so `kubectl`
/// can find its way.
pub fn resources_allow(allow: &[KubeResource], deny: &[KubeResource], req: &KubeRequest) -> bool {
    if deny.iter().any(|d| d.matches(req)) {
        return false;
    }
    if allow.iter().any(|a| a.matches(req)) {
        return true;
    }
    if req.resource == "namespaces" && req.api_group.is_empty() && ["get", "list", "watch"].contains(&req.verb.as_str()) {
        return allow.iter().any(|a| {
            a.verb_ok("get")
                && (req.name.is_empty() || a.namespace == "*" || (!a.namespace.is_empty() && value_matches(&a.namespace, &req.name)))
        });
    }
    false
}

/// Who the API server is asked to treat the caller as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Impersonation {
    /// `Impersonate-User`.
    pub user: String,
    /// `Impersonate-Group`, one header each; always holds [`AUTHENTICATED_GROUP`].
    pub groups: Vec<String>,
}

/// The impersonation the caller's own request asked for (`kubectl --as/--as-group`, a
/// kubeconfig's `as`), header names lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requested {
    /// Values of `Impersonate-User` headers.
    pub users: Vec<String>,
    /// Values of `Impersonate-Group` headers.
    pub groups: Vec<String>,
    /// Any other `Impersonate-*` header (`Impersonate-Uid`, `Impersonate-Extra-*`).
    pub other: Vec<String>,
}

impl Requested {
    /// Collects the `Impersonate-*` headers of a request.
    pub fn from_headers<'a>(headers: impl Iterator<Item = (&'a str, &'a str)>) -> Requested {
        let mut r = Requested::default();
        for (name, value) in headers {
            let lower = name.to_ascii_lowercase();
            match lower.as_str() {
                "impersonate-user" => r.users.push(value.to_string()),
                "impersonate-group" => r.groups.push(value.to_string()),
                n if n.starts_with("impersonate-") => r.other.push(name.to_string()),
                _ => {}
            }
        }
        r
    }
}

const DENIED: &str = "impersonation request has been denied";

/// Decides the user and groups to send, as Teleport does: a requested user must be one the
/// roles allow (an empty one is ignored), each requested group too; nothing requested means
/// the one allowed user (or `default_user` when the roles name none; a choice is refused when
/// they name several) and every allowed group.
pub fn impersonate(
    requested: &Requested,
    users: &[String],
    groups: &[String],
    default_user: &str,
) -> std::result::Result<Impersonation, String> {
    if let Some(h) = requested.other.first() {
        return Err(format!("{DENIED}, unsupported impersonation header {h:?}"));
    }
    let mut user: Option<String> = None;
    for u in requested.users.iter().filter(|u| !u.is_empty()) {
        if let Some(already) = &user {
            return Err(format!("{DENIED}, user already specified to {already:?}"));
        }
        if !users.contains(u) {
            return Err(format!("{DENIED}, user header {u:?} is not allowed in roles"));
        }
        user = Some(u.clone());
    }
    let mut out_groups: Vec<String> = Vec::new();
    for g in requested.groups.iter().filter(|g| !g.is_empty()) {
        if !groups.contains(g) && g != AUTHENTICATED_GROUP {
            return Err(format!("{DENIED}, group header {g:?} value is not allowed in roles"));
        }
        if !out_groups.contains(g) {
            out_groups.push(g.clone());
        }
    }
    let user = match user {
        Some(u) => u,
        None => match users {
            [] => default_user.to_string(),
            [one] => one.clone(),
            _ => {
                return Err(
                    "please select a user to impersonate, refusing to select a user due to several kubernetes_users set up for this user"
                        .into(),
                );
            }
        },
    };
    if requested.groups.iter().all(|g| g.is_empty()) {
        for g in groups {
            if !out_groups.contains(g) {
                out_groups.push(g.clone());
            }
        }
    }
    if !out_groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
        out_groups.push(AUTHENTICATED_GROUP.into());
    }
    Ok(Impersonation { user, groups: out_groups })
}

/// A Kubernetes `Status` (what `kubectl` prints as `Error from server (Forbidden): ...`).
pub fn status(code: u16, message: &str) -> String {
    let reason = match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        _ => "InternalError",
    };
    serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, query: &str) -> KubeRequest {
        KubeRequest::parse(method, path, query).unwrap()
    }

    #[test]
    fn parsing_paths() {
        let r = req("GET", "/api/v1/namespaces/default/pods", "limit=500");
        assert_eq!((r.verb.as_str(), r.namespace.as_str(), r.resource.as_str(), r.name.as_str()), ("list", "default", "pods", ""));
        let r = req("GET", "/api/v1/namespaces/default/pods/web-1", "");
        assert_eq!((r.verb.as_str(), r.name.as_str()), ("get", "web-1"));
        let r = req("GET", "/api/v1/namespaces/default/pods", "watch=true&resourceVersion=1");
        assert_eq!(r.verb, "watch");
        let r = req("POST", "/api/v1/namespaces/default/pods/web-1/exec", "command=sh&stdin=true");
        assert_eq!((r.verb.as_str(), r.subresource.as_str()), ("exec", "exec"));
        let r = req("GET", "/api/v1/namespaces/default/pods/web-1/exec", "command=sh");
        assert_eq!(r.verb, "exec");
        assert_eq!(req("GET", "/api/v1/namespaces/default/pods/web-1/log", "follow=true").verb, "get");
        assert_eq!(req("POST", "/api/v1/namespaces/default/pods/web-1/portforward", "").verb, "portforward");
        let r = req("GET", "/api/v1/namespaces/kube-system", "");
        assert_eq!((r.resource.as_str(), r.name.as_str(), r.namespace.as_str()), ("namespaces", "kube-system", ""));
        let r = req("GET", "/api/v1/namespaces", "");
        assert_eq!((r.verb.as_str(), r.resource.as_str()), ("list", "namespaces"));
        let r = req("DELETE", "/apis/apps/v1/namespaces/prod/deployments/api", "");
        assert_eq!((r.verb.as_str(), r.api_group.as_str(), r.resource.as_str()), ("delete", "apps", "deployments"));
        assert_eq!(req("DELETE", "/api/v1/namespaces/prod/pods", "").verb, "deletecollection");
        assert_eq!(req("GET", "/api/v1/nodes", "").namespace, "");
        for discovery in
            ["/version", "/api", "/apis", "/api/v1", "/apis/apps/v1", "/openapi/v3", "/", "/api/v1/../secrets", "//api/v1/pods"]
        {
            assert!(KubeRequest::parse("GET", discovery, "").is_none(), "{discovery}");
        }
    }

    #[test]
    fn resources() {
        let pods_in_dev = KubeResource {
            kind: "pod".into(),
            namespace: "dev".into(),
            name: "*".into(),
            verbs: vec!["get".into(), "list".into()],
            api_group: String::new(),
        };
        let allow = [pods_in_dev.clone()];
        assert!(resources_allow(&allow, &[], &req("GET", "/api/v1/namespaces/dev/pods", "")));
        assert!(resources_allow(&allow, &[], &req("GET", "/api/v1/namespaces/dev/pods/a", "")));
        assert!(!resources_allow(&allow, &[], &req("GET", "/api/v1/namespaces/prod/pods/a", "")));
        assert!(!resources_allow(&allow, &[], &req("DELETE", "/api/v1/namespaces/dev/pods/a", "")));
        assert!(!resources_allow(&allow, &[], &req("GET", "/api/v1/namespaces/dev/secrets/a", "")));
        assert!(!resources_allow(&allow, &[], &req("POST", "/api/v1/namespaces/dev/pods/a/exec", "")));
        // Finding one's way: the namespace itself and the list of namespaces.
        assert!(resources_allow(&allow, &[], &req("GET", "/api/v1/namespaces/dev", "")));
        assert!(resources_allow(&allow, &[], &req("GET", "/api/v1/namespaces", "")));
        assert!(!resources_allow(&allow, &[], &req("GET", "/api/v1/namespaces/prod", "")));
        // Plural kinds (role v8) and the wildcard default.
        let v8 = KubeResource { kind: "pods".into(), ..pods_in_dev.clone() };
        assert!(resources_allow(&[v8], &[], &req("GET", "/api/v1/namespaces/dev/pods", "")));
        let all = [KubeResource::everything()];
        assert!(resources_allow(&all, &[], &req("POST", "/api/v1/namespaces/x/pods/a/exec", "")));
        assert!(resources_allow(&all, &[], &req("GET", "/api/v1/nodes", "")));
        // Deny wins.
        let no_exec = KubeResource {
            kind: "*".into(),
            namespace: "*".into(),
            name: "*".into(),
            verbs: vec!["exec".into()],
            api_group: String::new(),
        };
        assert!(!resources_allow(&all, &[no_exec], &req("POST", "/api/v1/namespaces/x/pods/a/exec", "")));
        // kind: namespace grants what is inside.
        let ns = KubeResource {
            kind: "namespace".into(),
            namespace: String::new(),
            name: "team-*".into(),
            verbs: vec!["*".into()],
            api_group: String::new(),
        };
        assert!(resources_allow(std::slice::from_ref(&ns), &[], &req("DELETE", "/apis/apps/v1/namespaces/team-a/deployments/x", "")));
        assert!(!resources_allow(&[ns], &[], &req("DELETE", "/apis/apps/v1/namespaces/prod/deployments/x", "")));
        // A namespaced entry does not reach cluster-wide objects.
        assert!(!resources_allow(&[pods_in_dev], &[], &req("GET", "/api/v1/nodes", "")));
        assert_eq!(singular("ingresses"), "ingress");
        assert_eq!(singular("networkpolicies"), "networkpolicy");
        assert_eq!(singular("endpoints"), "endpoints");
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn impersonation_rules() {
        let none = Requested::default();
        let got = impersonate(&none, &s(&["alice"]), &s(&["devs"]), "bob").unwrap();
        assert_eq!(got, Impersonation { user: "alice".into(), groups: s(&["devs", AUTHENTICATED_GROUP]) });
        let got = impersonate(&none, &[], &s(&["devs"]), "remote-bob-root").unwrap();
        assert_eq!(got.user, "remote-bob-root");
        let err = impersonate(&none, &s(&["a", "b"]), &[], "x").unwrap_err();
        assert!(err.contains("several kubernetes_users"), "{err}");
        let ask = |users: &[&str], groups: &[&str], other: &[&str]| Requested { users: s(users), groups: s(groups), other: s(other) };
        assert_eq!(impersonate(&ask(&["b"], &[], &[]), &s(&["a", "b"]), &[], "x").unwrap().user, "b");
        assert!(impersonate(&ask(&["root"], &[], &[]), &s(&["a"]), &[], "x").unwrap_err().contains("user header \"root\" is not allowed"));
        assert!(impersonate(&ask(&["a", "a"], &[], &[]), &s(&["a"]), &[], "x").unwrap_err().contains("user already specified"));
        assert_eq!(impersonate(&ask(&[""], &[], &[]), &s(&["a"]), &[], "x").unwrap().user, "a", "an empty user header is ignored");
        let e = impersonate(&ask(&[], &["system:masters"], &[]), &[], &s(&["devs"]), "x").unwrap_err();
        assert!(e.contains("group header \"system:masters\" value is not allowed"), "{e}");
        let got = impersonate(&ask(&[], &["devs"], &[]), &[], &s(&["devs", "ops"]), "x").unwrap();
        assert_eq!(got.groups, s(&["devs", AUTHENTICATED_GROUP]), "a requested subset replaces the defaults");
        let got = impersonate(&ask(&[], &[""], &[]), &[], &s(&["devs"]), "x").unwrap();
        assert_eq!(got.groups, s(&["devs", AUTHENTICATED_GROUP]), "an empty group header is no request");
        assert!(impersonate(&ask(&[], &[], &["Impersonate-Uid"]), &[], &[], "x").unwrap_err().contains("unsupported impersonation header"));
        let r = Requested::from_headers(
            [("Impersonate-User", "a"), ("impersonate-group", "g"), ("Impersonate-Extra-Scopes", "x"), ("Accept", "y")].into_iter(),
        );
        assert_eq!(r, ask(&["a"], &["g"], &["Impersonate-Extra-Scopes"]));
    }

    #[test]
    fn status_shape() {
        let v: serde_json::Value = serde_json::from_str(&status(403, "no")).unwrap();
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["reason"], "Forbidden");
        assert_eq!(v["code"], 403);
    }
}
