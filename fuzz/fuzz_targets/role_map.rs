//! role_map parsing and mapping. Input (UTF-8 text): the first line is the remote user's roles,
//! comma-separated; every further line is one role_map entry, `remote<TAB>local1,local2`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::resource::RoleMapping;
use shared::rolemap::{DEFAULT_IMPLICIT_ROLE, parse_role_map};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.lines();
    let roles: Vec<String> = lines.next().unwrap_or_default().split(',').filter(|r| !r.is_empty()).map(String::from).collect();
    let map: Vec<RoleMapping> = lines
        .take(32)
        .map(|line| {
            let (remote, locals) = line.split_once('\t').unwrap_or((line, ""));
            RoleMapping { remote: remote.into(), local: locals.split(',').map(String::from).collect() }
        })
        .collect();
    let Ok(compiled) = parse_role_map(&map) else { return };
    let mapped = compiled.map(&roles);
    // Deterministic, never an empty role name.
    assert_eq!(mapped, compiled.map(&roles));
    assert!(mapped.iter().all(|r| !r.is_empty()), "empty role in {mapped:?}");
    // The implicit role is never a source of a mapping. (An empty role list is matched as one
    // empty role, as Teleport does, so the property holds for non-empty lists.)
    if !roles.is_empty() {
        let mut with_implicit = roles.clone();
        with_implicit.push(DEFAULT_IMPLICIT_ROLE.into());
        assert_eq!(compiled.map(&with_implicit), mapped);
    }
    // A role the user does not hold cannot appear through a literal entry.
    for m in &map {
        let literal = !m.remote.contains('*') && !(m.remote.starts_with('^') && m.remote.ends_with('$'));
        if literal && !roles.contains(&m.remote) && !roles.is_empty() {
            let only = parse_role_map(std::slice::from_ref(m)).expect("a valid map's entry is valid alone");
            assert!(only.map(&roles).is_empty(), "{m:?} mapped {roles:?}");
        }
    }
});
