//! Role mapping: how a leaf turns a root user's roles into its own (reference §3).
//!
//! A `role_map` is an ordered list of `{remote, local}` entries. `remote` is a literal with `*`
//! globs (each `*` a capture group) or, when it starts with `^` and ends with `$`, a regular
//! expression. Every `local` value is expanded with `$1`/`${1}` from the match. The result keeps
//! the order of the map, then of the remote roles, then of the local list; nothing is sorted or
//! de-duplicated, and empty expansions are dropped.

use regex::Regex;

use crate::error::{Error, Result};
use crate::labels::compile_expression;
use crate::resource::RoleMapping;

/// The role every role set implicitly carries; never mapped.
pub const DEFAULT_IMPLICIT_ROLE: &str = "default-implicit-role";

/// A validated role map, ready to apply.
#[derive(Debug, Clone)]
pub struct CompiledRoleMap {
    entries: Vec<(String, Regex, Vec<String>)>,
}

/// Validates a role map with Teleport's rules and messages, in Teleport's order.
pub fn parse_role_map(map: &[RoleMapping]) -> Result<CompiledRoleMap> {
    let mut seen: Vec<&str> = Vec::new();
    let mut entries = Vec::with_capacity(map.len());
    for m in map {
        if m.remote.is_empty() {
            return Err(Error::bad_parameter("missing 'remote' parameter for role_map"));
        }
        let re = compile_expression(&m.remote)
            .map_err(|e| Error::bad_parameter(format!("failed to parse 'remote' parameter for role_map: {e}")))?;
        if m.local.is_empty() {
            return Err(Error::bad_parameter("missing 'local' parameter for 'role_map'"));
        }
        for l in &m.local {
            if l.is_empty() {
                return Err(Error::bad_parameter("missing 'local' property of 'role_map' entry"));
            }
            if l == "*" {
                return Err(Error::bad_parameter("wildcard value is not supported for 'local' property of 'role_map' entry"));
            }
        }
        if seen.contains(&m.remote.as_str()) {
            return Err(Error::bad_parameter(format!("remote role '{}' match is already specified", m.remote)));
        }
        seen.push(&m.remote);
        entries.push((m.remote.clone(), re, m.local.clone()));
    }
    Ok(CompiledRoleMap { entries })
}

impl CompiledRoleMap {
    /// Maps remote roles to local roles.
    pub fn map(&self, remote_roles: &[String]) -> Vec<String> {
        let empty = [String::new()];
        let remote: &[String] = if remote_roles.is_empty() { &empty } else { remote_roles };
        let mut out = Vec::new();
        for (_, re, locals) in &self.entries {
            for role in remote {
                if role == DEFAULT_IMPLICIT_ROLE {
                    continue;
                }
                for local in locals {
                    if !re.is_match(role) {
                        continue;
                    }
                    let mapped = re.replace_all(role, local.as_str()).into_owned();
                    if !mapped.is_empty() {
                        out.push(mapped);
                    }
                }
            }
        }
        out
    }
}

impl CompiledRoleMap {
    /// Each entry's part in [`CompiledRoleMap::map`], for `access explain`.
    pub fn explain(&self, remote_roles: &[String]) -> Vec<RoleMapMatch> {
        self.entries
            .iter()
            .map(|(remote, re, local)| {
                // As `map`: a user without roles is matched as one empty role.
                let empty = [String::new()];
                let roles: &[String] = if remote_roles.is_empty() { &empty } else { remote_roles };
                let matched: Vec<String> =
                    roles.iter().filter(|r| r.as_str() != DEFAULT_IMPLICIT_ROLE && re.is_match(r)).cloned().collect();
                let one = CompiledRoleMap { entries: vec![(remote.clone(), re.clone(), local.clone())] };
                RoleMapMatch { remote: remote.clone(), local: local.clone(), produced: one.map(&matched), matched }
            })
            .collect()
    }
}

/// One `role_map` entry against a user's remote roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMapMatch {
    /// The entry's `remote`.
    pub remote: String,
    /// The entry's `local`.
    pub local: Vec<String>,
    /// The remote roles it matched.
    pub matched: Vec<String>,
    /// The local roles it gave.
    pub produced: Vec<String>,
}

/// Validates `map` and applies it to `remote_roles`.
pub fn map_roles(map: &[RoleMapping], remote_roles: &[String]) -> Result<Vec<String>> {
    Ok(parse_role_map(map)?.map(remote_roles))
}

/// One SSO mapping: a claim (OIDC), attribute (SAML) or trait name, a value expression (a
/// literal with `*` globs, or `^...$` a regular expression), and the roles it grants (which may
/// use `$1` captures).
#[derive(Debug, Clone, PartialEq)]
pub struct TraitMapping {
    /// The claim or attribute name.
    pub name: String,
    /// The value expression.
    pub value: String,
    /// Roles granted on a match.
    pub roles: Vec<String>,
}

/// Teleport's `TraitsToRoles`: the roles `traits` earn under `mappings` (in mapping order,
/// de-duplicated), and warnings for values that match only when case is ignored (those grant
/// nothing: a claim spelled differently is not the claim the administrator wrote).
pub fn traits_to_roles(mappings: &[TraitMapping], traits: &crate::template::Traits) -> Result<(Vec<String>, Vec<String>)> {
    let mut roles: Vec<String> = Vec::new();
    let mut warnings = Vec::new();
    for m in mappings {
        let Some(values) = traits.get(&m.name) else { continue };
        let re = crate::labels::compile_expression(&m.value)
            .map_err(|e| Error::bad_parameter(format!("invalid value expression {:?} for {:?}: {e}", m.value, m.name)))?;
        let folded = regex::Regex::new(&format!("(?i){}", re.as_str())).ok();
        for v in values {
            if !re.is_match(v) {
                if folded.as_ref().is_some_and(|f| f.is_match(v)) {
                    warnings.push(format!("{:?} value {v:?} matches {:?} only when case is ignored; no role granted", m.name, m.value));
                }
                continue;
            }
            for r in &m.roles {
                let role = re.replace_all(v, r.as_str()).into_owned();
                if !role.is_empty() && !roles.contains(&role) {
                    roles.push(role);
                }
            }
        }
    }
    Ok((roles, warnings))
}

/// True when a local role name uses `$` expansion (and so need not exist as a role).
pub fn uses_expansion(local: &str) -> bool {
    local.contains('$')
}

/// Go's `%v` of a string slice: `[a b]`.
pub fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// The node-side error when nothing maps (reference §3.1 step 5).
pub fn no_roles_mapped_ssh(remote_roles: &[String]) -> Error {
    Error::access_denied(format!("no roles mapped for user with remote roles {}", go_list(remote_roles)))
}

/// The API-side error when nothing maps.
pub fn no_roles_mapped_api(user: &str, cluster: &str, remote_roles: &[String]) -> Error {
    Error::access_denied(format!(
        "no roles mapped for remote user {user:?} from cluster {cluster:?} with remote roles {}; add a role_map entry for one of them to trusted_cluster {cluster:?} on this cluster ('tsh access explain --cluster=<this cluster> <login>@<node>' shows each rule)",
        go_list(remote_roles)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traits_map_to_roles_like_teleport() {
        let mut t = crate::template::Traits::new();
        t.insert("groups".into(), vec!["admins".into(), "dev-payments".into(), "Ops".into()]);
        let m = |name: &str, value: &str, roles: &[&str]| TraitMapping {
            name: name.into(),
            value: value.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        };
        let maps = vec![
            m("groups", "admins", &["full-access", "editor"]),
            m("groups", "^dev-(.*)$", &["$1-admin"]),
            m("groups", "ops", &["ops"]),
            m("missing", "*", &["x"]),
            m("groups", "admin*", &["editor"]),
        ];
        let (roles, warnings) = traits_to_roles(&maps, &t).unwrap();
        assert_eq!(roles, vec!["full-access", "editor", "payments-admin"]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("\"Ops\""), "{warnings:?}");
        assert!(traits_to_roles(&[m("groups", "^($", &["r"])], &t).is_err());
    }

    fn rm(remote: &str, local: &[&str]) -> RoleMapping {
        RoleMapping { remote: remote.into(), local: local.iter().map(|s| s.to_string()).collect() }
    }
    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }
    fn map(m: &[RoleMapping], r: &[&str]) -> Vec<String> {
        map_roles(m, &roles(r)).unwrap_or_else(|e| vec![format!("ERR {e}")])
    }

    #[test]
    fn exact_match() {
        assert_eq!(map(&[rm("access", &["visitor"])], &["access"]), roles(&["visitor"]));
        assert!(map(&[rm("access", &["visitor"])], &["editor"]).is_empty());
    }

    #[test]
    fn wildcard_matches_any_role_and_empty_role_list() {
        assert_eq!(map(&[rm("*", &["access"])], &["a", "b"]), roles(&["access", "access"]));
        assert_eq!(map(&[rm("*", &["access"])], &[]), roles(&["access"]));
        assert!(map(&[rm("dev", &["access"])], &[]).is_empty());
    }

    #[test]
    fn glob_prefix_and_capture() {
        assert_eq!(map(&[rm("cluster-*", &["clusteradmin"])], &["cluster-a", "other"]), roles(&["clusteradmin"]));
        assert_eq!(map(&[rm("cluster-*", &["admin-$1"])], &["cluster-eu"]), roles(&["admin-eu"]));
        assert_eq!(map(&[rm("*-*", &["$2-$1"])], &["a-b"]), roles(&["b-a"]));
    }

    #[test]
    fn regex_with_expansion() {
        let m = [rm("^remote-(.*)$", &["local-$1"])];
        assert_eq!(map(&m, &["remote-one", "remote-two", "other"]), roles(&["local-one", "local-two"]));
        // `$1x` names group "1x", which does not exist: empty, so dropped.
        assert!(map(&[rm("^r-(.*)$", &["$1x"])], &["r-a"]).is_empty());
        assert_eq!(map(&[rm("^r-(.*)$", &["${1}x"])], &["r-a"]), roles(&["ax"]));
        // Missing group expands to empty; the whole result is empty, so it is dropped.
        assert!(map(&[rm("^r-(.*)$", &["$2"])], &["r-a"]).is_empty());
    }

    #[test]
    fn caret_without_dollar_is_literal() {
        assert!(map(&[rm("^dev", &["x"])], &["dev"]).is_empty());
        assert_eq!(map(&[rm("^dev", &["x"])], &["^dev"]), roles(&["x"]));
    }

    #[test]
    fn order_kept_no_dedup_and_implicit_role_skipped() {
        let m = [rm("*", &["a", "b"]), rm("dev", &["a"])];
        assert_eq!(map(&m, &["dev", DEFAULT_IMPLICIT_ROLE]), roles(&["a", "b", "a"]));
    }

    #[test]
    fn case_sensitive() {
        assert!(map(&[rm("Dev", &["x"])], &["dev"]).is_empty());
    }

    #[test]
    fn validation_messages() {
        let msg = |m: &[RoleMapping]| parse_role_map(m).err().map(|e| e.message).unwrap_or_default();
        assert_eq!(msg(&[rm("", &["a"])]), "missing 'remote' parameter for role_map");
        assert!(msg(&[rm("^(x$", &["a"])]).starts_with("failed to parse 'remote' parameter for role_map: "));
        assert_eq!(msg(&[rm("a", &[])]), "missing 'local' parameter for 'role_map'");
        assert_eq!(msg(&[rm("a", &[""])]), "missing 'local' property of 'role_map' entry");
        assert_eq!(msg(&[rm("a", &["*"])]), "wildcard value is not supported for 'local' property of 'role_map' entry");
        assert_eq!(msg(&[rm("a", &["x"]), rm("a", &["y"])]), "remote role 'a' match is already specified");
        // Only literal duplicates are refused.
        assert_eq!(msg(&[rm("a", &["x"]), rm("^a$", &["y"])]), "");
    }

    #[test]
    fn error_messages_use_go_list_format() {
        assert_eq!(no_roles_mapped_ssh(&roles(&["dev", "ops"])).message, "no roles mapped for user with remote roles [dev ops]");
    }
}

/// Property tests of the mapping rules: for any role names and any maps built from them, the
/// rules hold (literal, glob and regex entries; order; the implicit role; validation).
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    fn name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9-]{0,10}"
    }
    fn names(max: usize) -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(name(), 0..max)
    }
    fn rm(remote: &str, local: &[String]) -> RoleMapping {
        RoleMapping { remote: remote.into(), local: local.to_vec() }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The explanation's entries together give exactly what the map gives.
        #[test]
        fn the_explanation_adds_up_to_the_mapping(roles in names(5), locals in names(3)) {
            let locals = if locals.is_empty() { vec!["x".to_string()] } else { locals };
            let map = vec![rm("*", &["all".to_string()]), rm("dev-*", &["$1-admin".to_string()]), rm("^(a.*)$", &locals)];
            let c = parse_role_map(&map).unwrap();
            let parts: Vec<String> = c.explain(&roles).into_iter().flat_map(|m| m.produced).collect();
            prop_assert_eq!(parts, c.map(&roles));
        }

        /// A literal entry maps each occurrence of exactly its remote role, nothing else.
        #[test]
        fn literal_maps_exactly_its_role(remote in name(), locals in prop::collection::vec(name(), 1..4), roles in names(6)) {
            let out = map_roles(&[rm(&remote, &locals)], &roles).unwrap();
            let hits = roles.iter().filter(|r| **r == remote).count();
            let expected: Vec<String> = (0..hits).flat_map(|_| locals.clone()).collect();
            prop_assert_eq!(out, expected);
        }

        /// `*` maps every role the user holds (and a user with none once), never the implicit role.
        #[test]
        fn wildcard_maps_every_role_but_the_implicit_one(local in name(), roles in names(6)) {
            let mut with_implicit = roles.clone();
            with_implicit.push(DEFAULT_IMPLICIT_ROLE.into());
            let out = map_roles(&[rm("*", std::slice::from_ref(&local))], &with_implicit).unwrap();
            prop_assert_eq!(out, vec![local; roles.len()]);
        }

        /// A glob's `*` is a capture group: `prefix-*` → `$1` strips the prefix.
        #[test]
        fn glob_capture_strips_the_prefix(prefix in name(), rests in names(5)) {
            let roles: Vec<String> = rests.iter().map(|r| format!("{prefix}-{r}")).collect();
            let out = map_roles(&[rm(&format!("{prefix}-*"), &["$1".to_string()])], &roles).unwrap();
            prop_assert_eq!(out, rests);
        }

        /// `^(.*)$` → `$1` is the identity; `^(.*)$` → `${1}-x` appends.
        #[test]
        fn regex_identity_and_suffix(roles in prop::collection::vec(name(), 1..6)) {
            prop_assert_eq!(map_roles(&[rm("^(.*)$", &["$1".to_string()])], &roles).unwrap(), roles.clone());
            let suffixed: Vec<String> = roles.iter().map(|r| format!("{r}-x")).collect();
            prop_assert_eq!(map_roles(&[rm("^(.*)$", &["${1}-x".to_string()])], &roles).unwrap(), suffixed);
        }

        /// Results follow the map's order, then the roles' order; nothing is sorted or merged.
        #[test]
        fn order_is_map_then_roles(a in name(), b in name(), roles in prop::collection::vec(name(), 1..5)) {
            let out = map_roles(&[rm("*", std::slice::from_ref(&a)), rm("^(.*)$", &["$1".to_string()]), rm("^.*$", std::slice::from_ref(&b))], &roles).unwrap();
            let mut expected = vec![a; roles.len()];
            expected.extend(roles.iter().cloned());
            expected.extend(vec![b; roles.len()]);
            prop_assert_eq!(out, expected);
        }

        /// Mapping is a pure function: the same input gives the same output, and an entry that
        /// matches nothing adds nothing.
        #[test]
        fn unmatched_entries_add_nothing(remote in name(), locals in prop::collection::vec(name(), 1..3), roles in names(5)) {
            let base = map_roles(&[rm(&remote, &locals)], &roles).unwrap();
            let extra = map_roles(&[rm(&remote, &locals), rm("^zz-never-(.*)$", &["$1".to_string()])], &roles).unwrap();
            prop_assert_eq!(base, extra);
        }

        /// Validation: a local `*` or a repeated literal remote is always refused.
        #[test]
        fn invalid_maps_are_refused(remote in name(), local in name()) {
            prop_assert!(parse_role_map(&[rm(&remote, &["*".to_string()])]).is_err());
            prop_assert!(parse_role_map(&[rm(&remote, std::slice::from_ref(&local)), rm(&remote, std::slice::from_ref(&local))]).is_err());
            prop_assert!(parse_role_map(&[rm(&remote, &[])]).is_err());
        }
    }
}
