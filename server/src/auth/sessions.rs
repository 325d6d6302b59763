//! Live sessions others may join, kept by the cluster whose node runs them (a leaf keeps its
//! own): a small record under `sessiontrackers/<sid>` that the node writes when the session
//! starts, again when someone joins or leaves and every [`REFRESH`], and deletes when it ends.
//! A node that dies leaves a record that expires [`TTL`] later, not a ghost for half an hour.
//!
//! Who sees one (`tsh sessions ls`, `tsh join`, the web's Active Sessions): its owner and its
//! parties, this cluster's admin identity, a caller whose roles here (mapped ones for a root's
//! user) have a `session_tracker` rule for the verb, or whose `join_sessions` would let them
//! join it. Everyone else gets "not found", as for a session that does not exist.

use std::time::Duration;

use shared::api::SessionTracker;
use shared::error::{Error, Result};
use shared::identity::Caller;
use shared::party::check_session_id as valid_sid;
use shared::rbac::AccessChecker;

use super::AuthServer;
use crate::services::keys;
use crate::storage::Op;

/// How long a tracker outlives its last refresh.
pub const TTL: Duration = Duration::from_secs(90);
/// How often a node refreshes the trackers of its running sessions.
pub const REFRESH: Duration = Duration::from_secs(30);
/// The most parties a tracker may list.
pub const MAX_PARTICIPANTS: usize = 64;

/// Whether `caller` (with `checker`, or the admin identity) may `verb` (`list`/`read`) `t`.
pub fn visible(caller: &Caller, checker: &AccessChecker, admin: bool, verb: &str, t: &SessionTracker, here: &str) -> bool {
    if admin {
        return true;
    }
    if matches!(caller, Caller::Host(_)) {
        return false;
    }
    // A party without a cluster is taken as one of this cluster's users.
    let party = |u: &str, c: &str| caller.is_user(u, if c.is_empty() { here } else { c }, here);
    if party(&t.spec.host_user, &t.spec.host_user_cluster) || t.spec.participants.iter().any(|p| party(&p.user, &p.cluster)) {
        return true;
    }
    checker.check_rule("session_tracker", verb).is_ok() || !checker.join_modes(&t.owner_roles(), &t.spec.kind).is_empty()
}

impl AuthServer {
    async fn tracker(&self, sid: &str) -> Result<Option<SessionTracker>> {
        let item = self.services.backend.get(&keys::session_tracker(sid)).await?;
        let now = self.clock.now();
        Ok(item
            .and_then(|i| serde_json::from_slice::<SessionTracker>(&i.value).ok())
            .filter(|t| t.metadata.expires.is_none_or(|e| e > now)))
    }

    /// A node records (or refreshes) one of its live sessions.
    pub async fn upsert_session_tracker(&self, mut t: SessionTracker, host_id: &str) -> Result<()> {
        valid_sid(&t.metadata.name)?;
        if t.spec.session_id != t.metadata.name || t.spec.host_id != host_id || t.spec.target_address != host_id {
            return Err(Error::access_denied("a node may only track its own sessions, under their own ID"));
        }
        if t.spec.participants.len() > MAX_PARTICIPANTS {
            return Err(Error::bad_parameter(format!("a session lists at most {MAX_PARTICIPANTS} parties")));
        }
        if let Some(old) = self.tracker(&t.metadata.name).await?
            && old.spec.host_id != host_id
        {
            return Err(Error::access_denied("this session belongs to another node"));
        }
        let expires = self.clock.now() + TTL;
        t.kind = "session_tracker".into();
        t.version = "v1".into();
        t.metadata.expires = Some(expires);
        t.spec.cluster_name = self.cluster_name().into();
        let value = serde_json::to_vec(&t).map_err(|e| Error::internal(e.to_string()))?;
        let key = keys::session_tracker(&t.metadata.name);
        self.services.apply(vec![Op::Put { key, value, expires: Some(expires.unix_timestamp()) }]).await?;
        Ok(())
    }

    /// A node's session ended.
    pub async fn remove_session_tracker(&self, sid: &str, host_id: &str) -> Result<()> {
        valid_sid(sid)?;
        match self.tracker(sid).await? {
            Some(t) if t.spec.host_id == host_id => match self.services.apply(vec![Op::Delete { key: keys::session_tracker(sid) }]).await {
                Ok(_) => Ok(()),
                Err(e) if e.kind == shared::Kind::NotFound => Ok(()),
                Err(e) => Err(e),
            },
            Some(_) => Err(Error::access_denied("this session belongs to another node")),
            None => Ok(()),
        }
    }

    /// The live sessions `caller` may see, oldest first.
    pub async fn session_trackers(&self, caller: &Caller, checker: &AccessChecker, admin: bool) -> Result<Vec<SessionTracker>> {
        let here = self.cluster_name().to_string();
        let now = self.clock.now();
        let mut all: Vec<SessionTracker> = self
            .services
            .backend
            .list(keys::SESSION_TRACKERS)
            .await?
            .into_iter()
            .filter_map(|i| serde_json::from_slice::<SessionTracker>(&i.value).ok())
            .filter(|t| t.metadata.expires.is_none_or(|e| e > now))
            .filter(|t| visible(caller, checker, admin, "list", t, &here))
            .collect();
        all.sort_by(|a, b| a.spec.created.cmp(&b.spec.created).then(a.metadata.name.cmp(&b.metadata.name)));
        Ok(all)
    }

    /// One live session, if `caller` may see it.
    pub async fn session_tracker(&self, caller: &Caller, checker: &AccessChecker, admin: bool, sid: &str) -> Result<SessionTracker> {
        valid_sid(sid)?;
        let here = self.cluster_name().to_string();
        let not_found = || {
            Error::not_found(format!(
                "session {sid} is not running in cluster {here:?} (or your roles may not see it); 'tsh sessions ls' lists the ones you may join"
            ))
        };
        let t = self.tracker(sid).await?.ok_or_else(not_found)?;
        if !visible(caller, checker, admin, "read", &t, &here) {
            return Err(not_found());
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::api::{Participant, SessionTrackerSpec, TrackerRole};
    use shared::identity::UserIdentity;
    use shared::resource::Role;
    use shared::resource::role::{JoinSessions, RoleConditions, RoleSpec, Rule};
    use shared::template::Traits;

    fn tracker(owner: &str, cluster: &str, roles: &[&str]) -> SessionTracker {
        SessionTracker {
            kind: "session_tracker".into(),
            version: "v1".into(),
            metadata: shared::resource::Metadata { name: uuid::Uuid::new_v4().to_string(), ..Default::default() },
            spec: SessionTrackerSpec {
                kind: "ssh".into(),
                host_user: owner.into(),
                host_user_cluster: cluster.into(),
                host_roles: roles.iter().map(|r| TrackerRole { name: r.to_string() }).collect(),
                participants: vec![Participant {
                    user: owner.into(),
                    cluster: cluster.into(),
                    mode: "peer".into(),
                    last_active: time::OffsetDateTime::UNIX_EPOCH,
                    ..Default::default()
                }],
                created: time::OffsetDateTime::UNIX_EPOCH,
                ..Default::default()
            },
        }
    }

    fn user(name: &str) -> Caller {
        Caller::LocalUser(UserIdentity { username: name.into(), ..Default::default() })
    }

    fn checker(allow: RoleConditions) -> AccessChecker {
        AccessChecker::new(&[Role::new("r", RoleSpec { allow, ..Default::default() })], &Traits::new())
    }

    #[test]
    fn owners_see_their_sessions_and_others_only_by_rule_or_join_sessions() {
        let t = tracker("alice", "root", &["visitor"]);
        let none = checker(RoleConditions::default());
        let remote_alice =
            Caller::RemoteUser { identity: UserIdentity { username: "alice".into(), ..Default::default() }, cluster: "root".into() };
        assert!(visible(&remote_alice, &none, false, "list", &t, "leaf"), "the owner, from the root");
        assert!(!visible(&user("alice"), &none, false, "list", &t, "leaf"), "a leaf's own alice is someone else");
        assert!(!visible(&user("bob"), &none, false, "list", &t, "leaf"), "deny by default");
        assert!(visible(&user("bob"), &none, true, "list", &t, "leaf"), "the admin identity");
        let rule = checker(RoleConditions {
            rules: vec![Rule { resources: vec!["session_tracker".into()], verbs: vec!["list".into()], ..Default::default() }],
            ..Default::default()
        });
        assert!(visible(&user("bob"), &rule, false, "list", &t, "leaf"));
        assert!(!visible(&user("bob"), &rule, false, "read", &t, "leaf"), "the rule names the verb");
        let join = |roles: &[&str]| {
            checker(RoleConditions {
                join_sessions: vec![JoinSessions {
                    name: "watch".into(),
                    roles: roles.iter().map(|r| r.to_string()).collect(),
                    kinds: vec!["ssh".into()],
                    modes: vec!["observer".into()],
                }],
                ..Default::default()
            })
        };
        assert!(visible(&user("bob"), &join(&["visit*"]), false, "read", &t, "leaf"));
        assert!(!visible(&user("bob"), &join(&["admin"]), false, "read", &t, "leaf"));
    }
}
