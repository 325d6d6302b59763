//! `lock` (v2): stops a user, a role, a login or a node from interacting with the cluster while
//! it is in force, even with a valid certificate (Teleport's RFD 9). New logins and API calls
//! that match are refused, and live sessions that match are ended.
//!
//! A lock's target lists attributes; an interaction matches when **every** attribute the target
//! sets matches it. `role` matches a certificate's roles, and for a root's user on a leaf also
//! the roles they are mapped to. `node` and `server_id` match a node's UUID (or its name).
//!
//! One addition of ours: `spec.issued_before` limits a lock to certificates issued before that
//! time. Deleting a user creates such a lock, so the deleted user's certificates stop working at
//! once while a new user of the same name can still sign in.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Kind, Metadata};
use crate::error::{Error, Result};

/// A lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Always `lock`.
    pub kind: String,
    /// `v2`.
    #[serde(default = "v2")]
    pub version: String,
    /// The name (a UUID when made by `tctl lock`).
    pub metadata: Metadata,
    /// What is locked, why, and until when.
    pub spec: LockSpec,
}

fn v2() -> String {
    "v2".into()
}

/// The body of a lock.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockSpec {
    /// What the lock applies to.
    pub target: LockTarget,
    /// Shown to whoever is locked out.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When the lock lifts by itself (never when absent).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timefmt::opt_rfc3339")]
    pub expires: Option<OffsetDateTime>,
    /// When it was made.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timefmt::opt_rfc3339")]
    pub created_at: Option<OffsetDateTime>,
    /// Who made it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    /// Only certificates issued before this time are locked (our addition; see the module doc).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timefmt::opt_rfc3339")]
    pub issued_before: Option<OffsetDateTime>,
}

/// The attributes a lock matches. Teleport's fields; the ones we have no such thing for
/// (`mfa_device`, `windows_desktop`, `access_request`, `device`) are kept so a lock made by
/// Teleport round-trips, and they match nothing here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockTarget {
    /// A Teleport user.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// A role.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    /// A Unix login.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub login: String,
    /// A node's UUID or name (deprecated by Teleport in favour of `server_id`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// An MFA device.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mfa_device: String,
    /// A Windows desktop.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub windows_desktop: String,
    /// An access request.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub access_request: String,
    /// A trusted device.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
    /// A Teleport server's UUID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server_id: String,
}

impl LockTarget {
    /// The set fields as (proto name, value), in the proto's order.
    fn fields(&self) -> Vec<(&'static str, &str)> {
        [
            ("User", self.user.as_str()),
            ("Role", self.role.as_str()),
            ("Login", self.login.as_str()),
            ("Node", self.node.as_str()),
            ("MFADevice", self.mfa_device.as_str()),
            ("WindowsDesktop", self.windows_desktop.as_str()),
            ("AccessRequest", self.access_request.as_str()),
            ("Device", self.device.as_str()),
            ("ServerID", self.server_id.as_str()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }

    /// True when no attribute is set.
    pub fn is_empty(&self) -> bool {
        self.fields().is_empty()
    }
}

/// Teleport prints a target as its proto's compact text: `User:"alice" Role:"dev"`.
impl fmt::Display for LockTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.fields().into_iter().map(|(k, v)| format!("{k}:{v:?}")).collect();
        f.write_str(&parts.join(" "))
    }
}

/// What an interaction is, for matching against locks.
#[derive(Debug, Clone, Default)]
pub struct Subject<'a> {
    /// The Teleport user.
    pub user: Option<&'a str>,
    /// Every role that applies (a remote user's certificate roles and mapped roles).
    pub roles: &'a [String],
    /// The Unix login.
    pub login: Option<&'a str>,
    /// The node's UUID.
    pub server_id: Option<&'a str>,
    /// The node's name.
    pub node_name: Option<&'a str>,
    /// When the certificate in use was issued.
    pub issued_at: Option<OffsetDateTime>,
    /// The access requests whose roles the certificate carries.
    pub requests: &'a [String],
}

impl Lock {
    /// A lock named `name`.
    pub fn new(name: &str, spec: LockSpec) -> Lock {
        Lock { kind: Kind::Lock.as_str().into(), version: v2(), metadata: Metadata::named(name), spec }
    }

    /// Validates a lock someone asked to create.
    pub fn check_and_set_defaults(&mut self) -> Result<()> {
        if self.kind != Kind::Lock.as_str() {
            return Err(Error::bad_parameter(format!("expected kind lock, got {:?}", self.kind)));
        }
        if self.version != "v2" {
            return Err(Error::bad_parameter(format!("unsupported lock version {:?}; use v2", self.version)));
        }
        self.metadata.check(Kind::Lock)?;
        if self.spec.target.is_empty() {
            return Err(Error::bad_parameter(
                "a lock needs a target: set spec.target.user, role, login, node or server_id (tctl lock --user=NAME)",
            ));
        }
        if self.spec.message.chars().count() > 1024 || self.spec.message.chars().any(|c| c.is_control() && c != '\n') {
            return Err(Error::bad_parameter("a lock message must be at most 1024 characters without control characters"));
        }
        for (field, v) in self.spec.target.fields() {
            if v.len() > 253 || v.chars().any(char::is_control) {
                return Err(Error::bad_parameter(format!("lock target {field} {v:?} is not a valid name")));
            }
        }
        Ok(())
    }

    /// Whether the lock applies at `now`.
    pub fn in_force(&self, now: OffsetDateTime) -> bool {
        self.spec.expires.is_none_or(|e| e > now)
    }

    /// Whether the lock applies to `s` (all set target attributes match). Attributes we have no
    /// equivalent for match nothing.
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        let t = &self.spec.target;
        if t.is_empty() || !t.mfa_device.is_empty() || !t.windows_desktop.is_empty() || !t.device.is_empty() {
            return false;
        }
        if !t.access_request.is_empty() && !s.requests.contains(&t.access_request) {
            return false;
        }
        let eq = |want: &str, have: Option<&str>| want.is_empty() || have == Some(want);
        let node_ok = |want: &str| want.is_empty() || s.server_id == Some(want) || s.node_name == Some(want);
        let role_ok = t.role.is_empty() || s.roles.contains(&t.role);
        // Certificates carry whole seconds: one issued in the same second as `issued_before`
        // may be older or newer, so it counts as older (locked), the safe side.
        let issued_ok = match (self.spec.issued_before, s.issued_at) {
            (None, _) => true,
            (Some(before), Some(at)) => {
                let ceil = before.unix_timestamp() + i64::from(before.nanosecond() > 0);
                at.unix_timestamp() < ceil
            }
            (Some(_), None) => true,
        };
        eq(&t.user, s.user) && role_ok && eq(&t.login, s.login) && node_ok(&t.node) && node_ok(&t.server_id) && issued_ok
    }

    /// The message an interaction refused by this lock gets (Teleport's wording).
    pub fn refusal(&self) -> String {
        if self.spec.message.is_empty() {
            format!("lock targeting {} is in force", self.spec.target)
        } else {
            format!("lock targeting {} is in force: {}", self.spec.target, self.spec.message)
        }
    }
}

/// The first lock of `locks` in force at `now` that matches `s`.
pub fn find_lock<'a>(locks: &'a [Lock], s: &Subject<'_>, now: OffsetDateTime) -> Option<&'a Lock> {
    locks.iter().find(|l| l.in_force(now) && l.matches(s))
}

/// The locks a cluster enforces: its own, and those each trusted root sent for the root's users.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LockSet {
    /// This cluster's locks: they apply to everyone.
    #[serde(default)]
    pub local: Vec<Lock>,
    /// A root's locks: they apply only to certificates that root issued.
    #[serde(default)]
    pub remote: Vec<RemoteLocks>,
}

/// The locks of one trusted root.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteLocks {
    /// The root's name.
    pub cluster: String,
    /// Its locks.
    pub locks: Vec<Lock>,
}

impl LockSet {
    /// The lock (if any) that stops `s`, whose certificate `origin` issued.
    pub fn find(&self, s: &Subject<'_>, origin: &str, now: OffsetDateTime) -> Option<&Lock> {
        find_lock(&self.local, s, now)
            .or_else(|| self.remote.iter().filter(|r| r.cluster == origin).find_map(|r| find_lock(&r.locks, s, now)))
    }

    /// True when there is nothing to enforce.
    pub fn is_empty(&self) -> bool {
        self.local.is_empty() && self.remote.iter().all(|r| r.locks.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(target: LockTarget) -> Lock {
        Lock::new("l1", LockSpec { target, message: "maintenance".into(), ..Default::default() })
    }

    #[test]
    fn target_prints_like_teleport() {
        let t = LockTarget { user: "alice".into(), role: "dev".into(), ..Default::default() };
        assert_eq!(t.to_string(), "User:\"alice\" Role:\"dev\"");
        assert_eq!(lock(t).refusal(), "lock targeting User:\"alice\" Role:\"dev\" is in force: maintenance");
    }

    #[test]
    fn every_set_attribute_must_match() {
        let roles = vec!["access".to_string()];
        let alice = Subject { user: Some("alice"), roles: &roles, login: Some("root"), ..Default::default() };
        let bob = Subject { user: Some("bob"), roles: &roles, login: Some("root"), ..Default::default() };
        let l = lock(LockTarget { user: "alice".into(), ..Default::default() });
        assert!(l.matches(&alice));
        assert!(!l.matches(&bob));
        let l = lock(LockTarget { role: "access".into(), login: "root".into(), ..Default::default() });
        assert!(l.matches(&alice) && l.matches(&bob));
        let l = lock(LockTarget { role: "access".into(), login: "ubuntu".into(), ..Default::default() });
        assert!(!l.matches(&alice));
    }

    #[test]
    fn node_targets_match_uuid_or_name() {
        let n = Subject { server_id: Some("uuid-1"), node_name: Some("db1"), ..Default::default() };
        assert!(lock(LockTarget { node: "db1".into(), ..Default::default() }).matches(&n));
        assert!(lock(LockTarget { server_id: "uuid-1".into(), ..Default::default() }).matches(&n));
        assert!(!lock(LockTarget { server_id: "uuid-2".into(), ..Default::default() }).matches(&n));
    }

    #[test]
    fn expiry_and_issue_time() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let mut l = lock(LockTarget { user: "alice".into(), ..Default::default() });
        l.spec.expires = Some(now + time::Duration::seconds(10));
        assert!(l.in_force(now));
        assert!(!l.in_force(now + time::Duration::seconds(10)));
        l.spec.issued_before = Some(now);
        let old = Subject { user: Some("alice"), issued_at: Some(now - time::Duration::seconds(1)), ..Default::default() };
        let new = Subject { user: Some("alice"), issued_at: Some(now + time::Duration::seconds(1)), ..Default::default() };
        assert!(l.matches(&old));
        assert!(!l.matches(&new));
        // Within the lock's second a certificate cannot be told apart: it is locked.
        l.spec.issued_before = Some(now + time::Duration::milliseconds(300));
        let same = Subject { user: Some("alice"), issued_at: Some(now), ..Default::default() };
        assert!(l.matches(&same));
        assert!(!l.matches(&Subject { user: Some("alice"), issued_at: Some(now + time::Duration::seconds(1)), ..Default::default() }));
    }

    #[test]
    fn a_roots_locks_apply_only_to_its_own_users() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        let set = LockSet {
            local: vec![],
            remote: vec![RemoteLocks {
                cluster: "root".into(),
                locks: vec![lock(LockTarget { user: "alice".into(), ..Default::default() })],
            }],
        };
        let ids = vec!["req-1".to_string()];
        let with = Subject { user: Some("alice"), requests: &ids, ..Default::default() };
        let by_request =
            Lock::new("r", LockSpec { target: LockTarget { access_request: "req-1".into(), ..Default::default() }, ..Default::default() });
        assert!(by_request.matches(&with), "a certificate carrying the request");
        assert!(!by_request.matches(&Subject { user: Some("alice"), ..Default::default() }), "nor one without it");
        let alice = Subject { user: Some("alice"), ..Default::default() };
        assert!(set.find(&alice, "root", now).is_some());
        assert!(set.find(&alice, "other-root", now).is_none(), "another root's alice is someone else");
        assert!(set.find(&alice, "leaf", now).is_none(), "a local alice is someone else");
    }

    #[test]
    fn unsupported_targets_match_nothing_and_empty_is_refused() {
        let s = Subject { user: Some("alice"), ..Default::default() };
        assert!(!lock(LockTarget { user: "alice".into(), device: "d1".into(), ..Default::default() }).matches(&s));
        let mut empty = lock(LockTarget::default());
        let e = empty.check_and_set_defaults().err().map(|e| e.message).unwrap_or_default();
        assert!(e.contains("a lock needs a target"), "{e}");
    }
}
