//! The access checker: what a set of roles (with the caller's traits applied) allows
//! (reference §6). Deny rules always win; everything not allowed is denied.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::labels::match_labels;
use crate::resource::role::RoleConditions;
use crate::resource::{LabelMap, Role};
use crate::template::Traits;

/// Resource kinds the implicit role lets everyone list and read.
const IMPLICIT_READ: &[&str] = &["node", "remote_cluster", "cert_authority", "cluster_name", "kube_cluster", "app"];

/// The message Teleport uses when node RBAC refuses a login.
pub const NODE_DENIED: &str = "access to node denied. User does not have permissions. Confirm SSH login.";

/// Roles with traits applied.
#[derive(Debug, Clone)]
pub struct AccessChecker {
    roles: Vec<Role>,
}

impl AccessChecker {
    /// Builds a checker from roles and the caller's traits.
    pub fn new(roles: &[Role], traits: &Traits) -> AccessChecker {
        let roles = roles
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.spec.allow = r.spec.allow.apply_traits(traits);
                r.spec.deny = r.spec.deny.apply_traits(traits);
                r
            })
            .collect();
        AccessChecker { roles }
    }

    /// The role names.
    pub fn role_names(&self) -> Vec<String> {
        self.roles.iter().map(|r| r.metadata.name.clone()).collect()
    }

    /// The smallest positive value of a numeric role option across the roles (the strictest
    /// wins, as in Teleport); None when no role sets one.
    fn strictest(&self, pick: impl Fn(&crate::resource::role::RoleOptions) -> Option<i64>) -> Option<u64> {
        self.roles.iter().filter_map(|r| pick(&r.spec.options)).filter(|n| *n > 0).min().and_then(|n| u64::try_from(n).ok())
    }

    /// `max_sessions`: sessions one SSH connection may hold.
    pub fn max_sessions(&self) -> Option<u64> {
        self.strictest(|o| o.max_sessions)
    }

    /// `max_connections`: concurrent SSH connections of one user in the cluster.
    pub fn max_connections(&self) -> Option<u64> {
        self.strictest(|o| o.max_connections)
    }

    /// `client_idle_timeout`: the shortest a role sets.
    pub fn client_idle_timeout(&self) -> Option<Duration> {
        self.roles
            .iter()
            .filter_map(|r| r.spec.options.client_idle_timeout.as_deref())
            .filter_map(|t| crate::timefmt::parse_duration(t).ok())
            .filter(|d| !d.is_zero())
            .min()
    }

    /// The roles, with traits applied.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// Logins allowed by some role and not denied by any, in role order, without duplicates.
    pub fn allowed_logins(&self) -> Vec<String> {
        let denied: Vec<&String> = self.roles.iter().flat_map(|r| r.spec.deny.logins.iter()).collect();
        let mut out: Vec<String> = Vec::new();
        for r in &self.roles {
            for l in &r.spec.allow.logins {
                if !denied.contains(&l) && !out.contains(l) {
                    out.push(l.clone());
                }
            }
        }
        out
    }

    fn deny_node(&self, node_labels: &LabelMap) -> bool {
        self.roles
            .iter()
            .any(|r| namespace_ok(&r.spec.deny) && r.spec.deny.node_labels.as_ref().is_some_and(|l| match_labels(l, node_labels)))
    }

    /// May the caller log in to a node with these labels as `login`?
    pub fn check_node_login(&self, node_labels: &LabelMap, login: &str) -> Result<()> {
        if self.deny_node(node_labels) {
            return Err(Error::access_denied(NODE_DENIED));
        }
        if self.roles.iter().any(|r| r.spec.deny.logins.iter().any(|l| l == login)) {
            return Err(Error::access_denied(NODE_DENIED));
        }
        let allowed = self.roles.iter().any(|r| {
            let a = &r.spec.allow;
            namespace_ok(a) && a.node_labels.as_ref().is_some_and(|l| match_labels(l, node_labels)) && a.logins.iter().any(|l| l == login)
        });
        if allowed { Ok(()) } else { Err(Error::access_denied(NODE_DENIED)) }
    }

    /// Each role's part in [`AccessChecker::check_node_login`], for `access explain`: the
    /// verdict is "denied" when any role denies, else "allowed" when any role allows.
    pub fn explain_node_login(&self, node_labels: &LabelMap, login: &str) -> Vec<RoleLoginCheck> {
        self.roles
            .iter()
            .map(|r| {
                let (a, d) = (&r.spec.allow, &r.spec.deny);
                RoleLoginCheck {
                    role: r.metadata.name.clone(),
                    deny_labels: namespace_ok(d) && d.node_labels.as_ref().is_some_and(|l| match_labels(l, node_labels)),
                    deny_login: d.logins.iter().any(|l| l == login),
                    allow_labels: namespace_ok(a) && a.node_labels.as_ref().is_some_and(|l| match_labels(l, node_labels)),
                    allow_login: a.logins.iter().any(|l| l == login),
                    allow_node_labels: describe_labels(a.node_labels.as_ref()),
                    deny_node_labels: describe_labels(d.node_labels.as_ref()),
                    allow_logins: a.logins.clone(),
                    deny_logins: d.logins.clone(),
                }
            })
            .collect()
    }

    /// Each role's `cluster_labels` against a leaf's labels, for `access explain`; the verdict
    /// is [`AccessChecker::check_cluster`]'s.
    pub fn explain_cluster(&self, cluster_labels: &LabelMap) -> Vec<RoleClusterCheck> {
        self.roles
            .iter()
            .map(|r| RoleClusterCheck {
                role: r.metadata.name.clone(),
                allow: describe_labels(r.spec.allow.cluster_labels.as_ref()),
                deny: describe_labels(r.spec.deny.cluster_labels.as_ref()),
                allow_match: r.spec.allow.cluster_labels.as_ref().is_some_and(|l| match_labels(l, cluster_labels)),
                deny_match: r.spec.deny.cluster_labels.as_ref().is_some_and(|l| match_labels(l, cluster_labels)),
            })
            .collect()
    }

    /// May the caller see a node with these labels (`tsh ls`)?
    pub fn can_see_node(&self, node_labels: &LabelMap) -> bool {
        if self.deny_node(node_labels) {
            return false;
        }
        self.roles
            .iter()
            .any(|r| namespace_ok(&r.spec.allow) && r.spec.allow.node_labels.as_ref().is_some_and(|l| match_labels(l, node_labels)))
    }

    /// May the caller see or reach a leaf cluster with these labels (checked on the root)?
    pub fn check_cluster(&self, cluster_labels: &LabelMap) -> Result<()> {
        let denied = || Error::access_denied("access to cluster denied");
        if self.roles.is_empty() {
            return Err(denied());
        }
        let any_selector = self.roles.iter().any(|r| {
            r.spec.allow.cluster_labels.as_ref().is_some_and(|l| !l.is_empty())
                || r.spec.deny.cluster_labels.as_ref().is_some_and(|l| !l.is_empty())
        });
        if !any_selector && cluster_labels.is_empty() {
            return Ok(());
        }
        if self.roles.iter().any(|r| r.spec.deny.cluster_labels.as_ref().is_some_and(|l| match_labels(l, cluster_labels))) {
            return Err(denied());
        }
        if self.roles.iter().any(|r| r.spec.allow.cluster_labels.as_ref().is_some_and(|l| match_labels(l, cluster_labels))) {
            return Ok(());
        }
        Err(denied())
    }

    /// Roles whose `allow.kubernetes_labels` reach a Kubernetes cluster with these labels
    /// (`None`: every role, what a root puts in certificates for a leaf's clusters).
    fn kube_roles<'a>(&'a self, labels: Option<&'a LabelMap>) -> impl Iterator<Item = &'a Role> + 'a {
        self.roles.iter().filter(move |r| match labels {
            None => true,
            Some(l) => r.spec.allow.kubernetes_labels.as_ref().is_some_and(|sel| match_labels(sel, l)),
        })
    }

    fn kube_list(&self, labels: Option<&LabelMap>, pick: fn(&RoleConditions) -> &Vec<String>) -> Vec<String> {
        self.list_where(|c| &c.kubernetes_labels, labels, pick)
    }

    /// `kubernetes_users` allowed on a Kubernetes cluster with these labels, traits applied,
    /// denied ones removed.
    pub fn kubernetes_users(&self, labels: Option<&LabelMap>) -> Vec<String> {
        self.kube_list(labels, |c| &c.kubernetes_users)
    }

    /// `kubernetes_groups` allowed on a Kubernetes cluster with these labels.
    pub fn kubernetes_groups(&self, labels: Option<&LabelMap>) -> Vec<String> {
        self.kube_list(labels, |c| &c.kubernetes_groups)
    }

    /// May the caller reach a Kubernetes cluster with these labels (`kubernetes_labels`)?
    pub fn check_kube_cluster(&self, labels: &LabelMap) -> Result<()> {
        self.check_selector(|c| &c.kubernetes_labels, labels, "access to kubernetes cluster denied")
    }

    /// Some role's `allow` selector (`pick`) matches `labels` and no role's `deny` one does.
    fn check_selector(&self, pick: fn(&RoleConditions) -> &Option<crate::labels::Labels>, labels: &LabelMap, denied: &str) -> Result<()> {
        let matches = |c: &RoleConditions| pick(c).as_ref().is_some_and(|sel| match_labels(sel, labels));
        let deny = self.roles.iter().any(|r| matches(&r.spec.deny));
        let allow = self.roles.iter().any(|r| matches(&r.spec.allow));
        if !deny && allow { Ok(()) } else { Err(Error::access_denied(denied)) }
    }

    /// May the caller reach an app with these labels (`app_labels`; deny wins)?
    pub fn check_app(&self, labels: &LabelMap) -> Result<()> {
        self.check_selector(|c| &c.app_labels, labels, "access to app denied")
    }

    /// Some role's `db_labels` match a database with these labels and no role's deny does.
    pub fn check_db(&self, labels: &LabelMap) -> Result<()> {
        self.check_selector(|c| &c.db_labels, labels, "access to db denied")
    }

    /// `db_users` allowed on a database with these labels (traits applied, denied ones removed;
    /// `*` when any): what `tsh db ls` shows as Allowed Users.
    pub fn db_users(&self, labels: &LabelMap) -> Vec<String> {
        self.list_where(|c| &c.db_labels, Some(labels), |c| &c.db_users)
    }

    /// `db_names` allowed on a database with these labels.
    pub fn db_names(&self, labels: &LabelMap) -> Vec<String> {
        self.list_where(|c| &c.db_labels, Some(labels), |c| &c.db_names)
    }

    /// May the caller connect to a database with these labels as database user `user` to
    /// database `name` (Teleport's `db_labels`, `db_users` and `db_names`; `*` allows any; a
    /// deny rule naming the value or `*` wins)? The refusal names the rule that decided.
    pub fn check_db_login(&self, labels: &LabelMap, user: &str, name: &str) -> Result<()> {
        self.check_db(labels).map_err(|_| Error::access_denied("access to database denied: no role's db_labels match this database"))?;
        let reaching: Vec<&Role> =
            self.roles.iter().filter(|r| r.spec.allow.db_labels.as_ref().is_some_and(|sel| match_labels(sel, labels))).collect();
        let named = |list: &Vec<String>, v: &str| list.iter().any(|x| x == "*" || x == v);
        for (what, value, pick) in [
            ("database user", user, (|c: &RoleConditions| &c.db_users) as fn(&RoleConditions) -> &Vec<String>),
            ("database name", name, |c: &RoleConditions| &c.db_names),
        ] {
            if let Some(r) = self.roles.iter().find(|r| named(pick(&r.spec.deny), value)) {
                return Err(Error::access_denied(format!(
                    "access to database denied: role {:?} denies {what} {value:?} (deny.{})",
                    r.metadata.name,
                    if what == "database user" { "db_users" } else { "db_names" }
                )));
            }
            if !reaching.iter().any(|r| named(pick(&r.spec.allow), value)) {
                let allowed = if what == "database user" { self.db_users(labels) } else { self.db_names(labels) };
                let field = if what == "database user" { "db_users" } else { "db_names" };
                let allowed = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
                return Err(Error::access_denied(format!(
                    "access to database denied: {what} {value:?} is not in {field} of your roles here (allowed: {allowed})"
                )));
            }
        }
        Ok(())
    }

    /// May the holder request role `role` (some `allow.request.roles` pattern matches it and no
    /// `deny.request.roles` pattern does)?
    pub fn can_request(&self, role: &str) -> bool {
        use crate::resource::role::role_matches;
        let side = |c: &RoleConditions| c.request.as_ref().is_some_and(|r| r.roles.iter().any(|p| role_matches(p, role)));
        !self.roles.iter().any(|r| side(&r.spec.deny)) && self.roles.iter().any(|r| side(&r.spec.allow))
    }

    /// The roles of the holder's that allow requesting `role`.
    fn granting(&self, role: &str) -> impl Iterator<Item = &crate::resource::role::RequestConditions> {
        use crate::resource::role::role_matches;
        self.roles.iter().filter_map(|r| r.spec.allow.request.as_ref()).filter(move |c| c.roles.iter().any(|p| role_matches(p, role)))
    }

    /// The longest a request for `roles` may grant: the shortest `request.max_duration` of the
    /// holder's roles that allow them (none set: `None`, the session's own limit applies).
    pub fn request_max_duration(&self, roles: &[String]) -> Option<std::time::Duration> {
        roles
            .iter()
            .flat_map(|role| self.granting(role))
            .filter_map(|c| c.max_duration.as_deref())
            .filter_map(|d| crate::timefmt::parse_duration(d).ok())
            .min()
    }

    /// The thresholds a request for `roles` is decided by (of the roles that allow them).
    pub fn request_thresholds(&self, roles: &[String]) -> Vec<crate::resource::role::Threshold> {
        let mut out: Vec<crate::resource::role::Threshold> = Vec::new();
        for t in roles.iter().flat_map(|role| self.granting(role)).flat_map(|c| c.thresholds.iter()) {
            if !out.contains(t) {
                out.push(t.clone());
            }
        }
        out
    }

    /// The reviewers the holder's roles suggest for requests.
    pub fn suggested_reviewers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.roles.iter().filter_map(|r| r.spec.allow.request.as_ref()).flat_map(|c| c.suggested_reviewers.iter()) {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
        out
    }

    /// May the holder review a request for `roles` (each matched by `allow.review_requests.roles`,
    /// none by `deny.review_requests.roles`)?
    pub fn can_review(&self, roles: &[String]) -> bool {
        use crate::resource::role::role_matches;
        let side =
            |c: &RoleConditions, role: &str| c.review_requests.as_ref().is_some_and(|r| r.roles.iter().any(|p| role_matches(p, role)));
        !roles.is_empty()
            && roles
                .iter()
                .all(|role| !self.roles.iter().any(|r| side(&r.spec.deny, role)) && self.roles.iter().any(|r| side(&r.spec.allow, role)))
    }

    /// `options.request_prompt` of the holder's roles (the first set).
    pub fn request_prompt(&self) -> String {
        self.roles.iter().find_map(|r| r.spec.options.request_prompt.clone()).unwrap_or_default()
    }

    /// `options.request_access` of the holder's roles, the strictest: `always`, `reason` or
    /// `optional`.
    pub fn request_access(&self) -> &'static str {
        let modes: Vec<&str> = self.roles.iter().filter_map(|r| r.spec.options.request_access.as_deref()).collect();
        if modes.contains(&"always") {
            "always"
        } else if modes.contains(&"reason") {
            "reason"
        } else {
            "optional"
        }
    }

    /// The values of `pick` in the allow rules of roles whose `selector` matches `labels` (`None`:
    /// every role), less those any role's deny rules name.
    fn list_where(
        &self,
        selector: fn(&RoleConditions) -> &Option<crate::labels::Labels>,
        labels: Option<&LabelMap>,
        pick: fn(&RoleConditions) -> &Vec<String>,
    ) -> Vec<String> {
        let denied: Vec<&String> = self.roles.iter().flat_map(|r| pick(&r.spec.deny).iter()).collect();
        let mut out: Vec<String> = Vec::new();
        let reaches = |r: &&Role| labels.is_none_or(|l| selector(&r.spec.allow).as_ref().is_some_and(|sel| match_labels(sel, l)));
        for r in self.roles.iter().filter(reaches) {
            for v in pick(&r.spec.allow) {
                if !v.is_empty() && !denied.contains(&v) && !out.contains(v) {
                    out.push(v.clone());
                }
            }
        }
        out
    }

    /// The `kubernetes_resources` entries that apply on a cluster with these labels: allow
    /// entries of the roles that reach it (a role without any allows everything), deny entries
    /// of every role.
    pub fn kube_resources(&self, labels: &LabelMap) -> (Vec<crate::kube::KubeResource>, Vec<crate::kube::KubeResource>) {
        let allow = self
            .kube_roles(Some(labels))
            .flat_map(|r| match &r.spec.allow.kubernetes_resources {
                Some(list) => list.clone(),
                None => vec![crate::kube::KubeResource::everything()],
            })
            .collect();
        let deny = self.roles.iter().flat_map(|r| r.spec.deny.kubernetes_resources.clone().unwrap_or_default()).collect();
        (allow, deny)
    }

    /// May the caller perform `verb` on resources of `kind` (role `rules`)?
    pub fn check_rule(&self, kind: &str, verb: &str) -> Result<()> {
        let matches = |rules: &[crate::resource::role::Rule], deny: bool| {
            rules.iter().any(|rule| {
                if rule.where_.is_some() && !deny {
                    return false;
                }
                rule.resources.iter().any(|r| r == "*" || r == kind) && rule.verbs.iter().any(|v| v == "*" || v == verb)
            })
        };
        if self.roles.iter().any(|r| matches(&r.spec.deny.rules, true)) {
            return Err(rule_denied(kind, verb));
        }
        if IMPLICIT_READ.contains(&kind) && matches!(verb, "list" | "read" | "readnosecrets") {
            return Ok(());
        }
        if self.roles.iter().any(|r| matches(&r.spec.allow.rules, false)) {
            return Ok(());
        }
        Err(rule_denied(kind, verb))
    }

    /// Which recorded sessions the caller may `verb` (`list`, `read`): Teleport's rules on the
    /// `session` resource. A rule without `where` gives every session; one with the preset
    /// access role's `contains(session.participants, user.metadata.name)` gives the caller's
    /// own; any other `where` gives nothing (we do not evaluate expressions); a deny rule
    /// without `where` takes everything away.
    pub fn session_scope(&self, verb: &str) -> SessionScope {
        let applies = |rule: &crate::resource::role::Rule| {
            rule.resources.iter().any(|r| r == "*" || r == "session") && rule.verbs.iter().any(|v| v == "*" || v == verb)
        };
        if self.roles.iter().any(|r| r.spec.deny.rules.iter().any(|rule| applies(rule) && rule.where_.is_none())) {
            return SessionScope::None;
        }
        let allow = || self.roles.iter().flat_map(|r| r.spec.allow.rules.iter()).filter(|rule| applies(rule));
        if allow().any(|rule| rule.where_.is_none()) {
            SessionScope::All
        } else if allow().any(|rule| rule.where_.as_deref().map(str::trim) == Some(crate::resource::role::OWN_SESSIONS)) {
            SessionScope::Own
        } else {
            SessionScope::None
        }
    }

    /// The modes in which these roles may join a session of `kind` (`ssh`, ...) whose owner holds
    /// `owner_roles` here (Teleport's `join_sessions`: an entry counts when its `kinds` name the
    /// kind or `*` and one of its `roles` matches one of the owner's roles). Sorted, no repeats.
    pub fn join_modes(&self, owner_roles: &[String], kind: &str) -> Vec<String> {
        let mut modes: Vec<String> = self
            .roles
            .iter()
            .flat_map(|r| r.spec.allow.join_sessions.iter())
            .filter(|j| j.kinds.iter().any(|k| k == "*" || k == kind))
            .filter(|j| j.roles.iter().any(|p| owner_roles.iter().any(|o| crate::labels::value_matches(p, o))))
            .flat_map(|j| j.modes.iter().cloned())
            .collect();
        modes.sort();
        modes.dedup();
        modes
    }

    /// The shortest `max_session_ttl` of the roles.
    pub fn max_session_ttl(&self) -> Duration {
        self.roles.iter().map(Role::max_session_ttl).min().unwrap_or(Duration::from_secs(30 * 3600))
    }

    /// Whether some port forwarding is allowed (for the certificate's extension).
    pub fn port_forwarding(&self) -> bool {
        self.port_forward_mode() != ForwardMode::Off
    }

    /// Which port forwarding the roles allow, decided as Teleport decides it: a role without
    /// `ssh_port_forwarding` and with `port_forwarding: true` (or unset) allows both at once; a
    /// role's `ssh_port_forwarding.{local,remote}.enabled: false` denies that direction; the older
    /// `port_forwarding: false` denies only when no role has the newer block.
    pub fn port_forward_mode(&self) -> ForwardMode {
        let (mut local_denied, mut remote_denied, mut legacy_denied, mut newer_seen) = (false, false, false, false);
        for r in &self.roles {
            let o = &r.spec.options;
            match &o.ssh_port_forwarding {
                None => {
                    if o.port_forwarding.unwrap_or(true) {
                        return ForwardMode::On;
                    }
                    legacy_denied = true;
                }
                Some(f) => {
                    newer_seen = true;
                    let off = |s: &Option<crate::resource::role::ForwardSwitch>| s.as_ref().and_then(|s| s.enabled) == Some(false);
                    local_denied |= off(&f.local);
                    remote_denied |= off(&f.remote);
                }
            }
        }
        match (local_denied, remote_denied) {
            (true, true) => ForwardMode::Off,
            _ if legacy_denied && !newer_seen => ForwardMode::Off,
            (false, true) => ForwardMode::Local,
            (true, false) => ForwardMode::Remote,
            (false, false) => ForwardMode::On,
        }
    }

    /// Why local (`remote: false`: `-L`, `-D`) or remote (`-R`) port forwarding is refused,
    /// naming the role and the option; None when it is allowed.
    pub fn forward_refused_by(&self, remote: bool) -> Option<String> {
        let mode = self.port_forward_mode();
        if (remote && mode.remote()) || (!remote && mode.local()) {
            return None;
        }
        let dir = if remote { "remote" } else { "local" };
        for r in &self.roles {
            if let Some(f) = &r.spec.options.ssh_port_forwarding {
                let switch = if remote { &f.remote } else { &f.local };
                if switch.as_ref().and_then(|s| s.enabled) == Some(false) {
                    return Some(format!("role {:?} sets options.ssh_port_forwarding.{dir}.enabled to false", r.metadata.name));
                }
            }
        }
        match self.roles.iter().find(|r| r.spec.options.port_forwarding == Some(false)) {
            Some(r) => Some(format!("role {:?} sets options.port_forwarding to false", r.metadata.name)),
            None => Some("no role allows port forwarding".into()),
        }
    }

    /// Whether files may be copied: every role must allow it (`ssh_file_copy`, default true).
    pub fn ssh_file_copy(&self) -> bool {
        self.file_copy_refused_by().is_none()
    }

    /// The first role that refuses copying files.
    pub fn file_copy_refused_by(&self) -> Option<String> {
        self.roles.iter().find(|r| r.spec.options.ssh_file_copy == Some(false)).map(|r| r.metadata.name.clone())
    }

    /// Whether agent forwarding is allowed for `login`: a role with `forward_agent: true` whose
    /// `allow.logins` has the login.
    pub fn forward_agent_for(&self, login: &str) -> bool {
        self.roles.iter().any(|r| r.spec.options.forward_agent.unwrap_or(false) && r.spec.allow.logins.iter().any(|l| l == login))
    }

    /// Whether any role allows agent forwarding.
    pub fn forward_agent(&self) -> bool {
        self.roles.iter().any(|r| r.spec.options.forward_agent.unwrap_or(false))
    }
}

/// The port forwarding the roles allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardMode {
    /// None.
    Off,
    /// `-L` and `-D` only.
    Local,
    /// `-R` only.
    Remote,
    /// Both.
    On,
}

impl ForwardMode {
    /// Local forwarding (`direct-tcpip`) allowed.
    pub fn local(self) -> bool {
        matches!(self, ForwardMode::Local | ForwardMode::On)
    }

    /// Remote forwarding (`tcpip-forward`) allowed.
    pub fn remote(self) -> bool {
        matches!(self, ForwardMode::Remote | ForwardMode::On)
    }
}

/// Which recorded sessions a caller may list or play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionScope {
    /// Every session.
    All,
    /// Sessions the caller took part in.
    Own,
    /// None.
    None,
}

/// One role's answer to "may this login reach this node?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleLoginCheck {
    /// The role.
    pub role: String,
    /// Its `deny.node_labels` match the node.
    pub deny_labels: bool,
    /// Its `deny.logins` list the login.
    pub deny_login: bool,
    /// Its `allow.node_labels` match the node.
    pub allow_labels: bool,
    /// Its `allow.logins` (traits applied) list the login.
    pub allow_login: bool,
    /// `allow.node_labels`, as written (traits applied).
    pub allow_node_labels: String,
    /// `deny.node_labels`.
    pub deny_node_labels: String,
    /// `allow.logins`, traits applied.
    pub allow_logins: Vec<String>,
    /// `deny.logins`.
    pub deny_logins: Vec<String>,
}

impl RoleLoginCheck {
    /// This role denies the login (whatever the others allow).
    pub fn denies(&self) -> bool {
        self.deny_labels || self.deny_login
    }

    /// This role allows it (unless another denies).
    pub fn allows(&self) -> bool {
        self.allow_labels && self.allow_login
    }
}

/// One role's `cluster_labels` against a leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleClusterCheck {
    /// The role.
    pub role: String,
    /// `allow.cluster_labels`.
    pub allow: String,
    /// `deny.cluster_labels`.
    pub deny: String,
    /// The allow selector matches the leaf.
    pub allow_match: bool,
    /// The deny selector matches the leaf.
    pub deny_match: bool,
}

/// A selector as one line: `{env: stage, team: [a, b]}`, or `none` when unset or empty.
pub fn describe_labels(l: Option<&crate::labels::Labels>) -> String {
    match l {
        Some(l) if !l.is_empty() => {
            let parts: Vec<String> = l
                .iter()
                .map(|(k, v)| if v.0.len() == 1 { format!("{k}: {}", v.0[0]) } else { format!("{k}: [{}]", v.0.join(", ")) })
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        _ => "none".into(),
    }
}

/// A node's labels as one line.
pub fn describe_label_map(l: &LabelMap) -> String {
    if l.is_empty() {
        return "none".into();
    }
    format!("{{{}}}", l.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "))
}

fn namespace_ok(c: &RoleConditions) -> bool {
    c.namespaces.is_empty() || c.namespaces.iter().any(|n| n == "default" || n == "*")
}

fn rule_denied(kind: &str, verb: &str) -> Error {
    Error::access_denied(format!("access denied to perform action {verb:?} on {kind:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{Labels, wildcard};
    use crate::resource::role::{RoleSpec, Rule, one_label};

    fn role(name: &str, allow: RoleConditions, deny: RoleConditions) -> Role {
        let mut r = Role::new(name, RoleSpec { allow, deny, ..Default::default() });
        let _ = r.check_and_set_defaults();
        r
    }
    fn logins(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }
    fn labels(pairs: &[(&str, &str)]) -> LabelMap {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
    #[test]
    fn join_sessions_give_modes_by_the_owner_roles_and_the_kind() {
        use crate::resource::role::JoinSessions;
        let j = |roles: &[&str], kinds: &[&str], modes: &[&str]| JoinSessions {
            name: "j".into(),
            roles: logins(roles),
            kinds: logins(kinds),
            modes: logins(modes),
        };
        let auditor = role(
            "auditor",
            RoleConditions { join_sessions: vec![j(&["visitor", "^prod-.*$"], &["ssh"], &["observer"])], ..Default::default() },
            RoleConditions::default(),
        );
        let pair = role(
            "pair",
            RoleConditions { join_sessions: vec![j(&["dev*"], &["*"], &["peer", "observer"])], ..Default::default() },
            RoleConditions::default(),
        );
        let c = AccessChecker::new(&[auditor, pair], &Traits::new());
        assert_eq!(c.join_modes(&logins(&["visitor"]), "ssh"), logins(&["observer"]));
        assert_eq!(c.join_modes(&logins(&["prod-db"]), "ssh"), logins(&["observer"]));
        assert_eq!(c.join_modes(&logins(&["developer", "visitor"]), "ssh"), logins(&["observer", "peer"]));
        assert!(c.join_modes(&logins(&["visitor"]), "k8s").is_empty(), "the kind must match");
        assert!(c.join_modes(&logins(&["admin"]), "ssh").is_empty(), "no rule names the owner's roles");
        assert!(AccessChecker::new(&[], &Traits::new()).join_modes(&logins(&["visitor"]), "ssh").is_empty(), "deny by default");
    }

    #[test]
    fn database_users_and_names_come_from_the_roles_that_reach_the_database() {
        let one = |k: &str, v: &str| -> Option<Labels> {
            let mut l = Labels::new();
            l.insert(k.into(), crate::labels::LabelValues(vec![v.into()]));
            Some(l)
        };
        let dev = role(
            "dev",
            RoleConditions {
                db_labels: one("env", "dev"),
                db_users: logins(&["alice", "postgres"]),
                db_names: logins(&["dev", "*"]),
                ..Default::default()
            },
            RoleConditions { db_users: logins(&["postgres"]), ..Default::default() },
        );
        let prod = role(
            "prod",
            RoleConditions {
                db_labels: one("env", "prod"),
                db_users: logins(&["reader"]),
                db_names: logins(&["orders"]),
                ..Default::default()
            },
            RoleConditions::default(),
        );
        let c = AccessChecker::new(&[dev, prod], &Traits::new());
        let dev_db = labels(&[("env", "dev")]);
        assert!(c.check_db(&dev_db).is_ok() && c.check_db(&labels(&[("env", "qa")])).is_err(), "db_labels decide, deny by default");
        assert_eq!(c.db_users(&dev_db), logins(&["alice"]), "a denied user is not allowed even where another rule allows it");
        assert_eq!(c.db_names(&dev_db), logins(&["dev", "*"]));
        assert_eq!(c.db_users(&labels(&[("env", "prod")])), logins(&["reader"]), "only the roles that reach the database count");
        assert!(c.db_users(&labels(&[("env", "qa")])).is_empty());

        // Connecting: the user and the database actually requested, each checked.
        assert!(c.check_db_login(&dev_db, "alice", "dev").is_ok());
        assert!(c.check_db_login(&dev_db, "alice", "anything").is_ok(), "'*' in db_names allows any database");
        let e = c.check_db_login(&dev_db, "postgres", "dev").err().map(|e| e.message).unwrap_or_default();
        assert!(e.contains("role \"dev\" denies database user \"postgres\"") && e.contains("deny.db_users"), "{e}");
        let e = c.check_db_login(&dev_db, "mallory", "dev").err().map(|e| e.message).unwrap_or_default();
        assert!(e.contains("\"mallory\" is not in db_users") && e.contains("allowed: alice"), "{e}");
        let prod_db = labels(&[("env", "prod")]);
        let e = c.check_db_login(&prod_db, "reader", "prod").err().map(|e| e.message).unwrap_or_default();
        assert!(e.contains("database name \"prod\" is not in db_names") && e.contains("allowed: orders"), "{e}");
        assert!(c.check_db_login(&prod_db, "alice", "orders").is_err(), "the dev role's users do not reach the prod database");
        let e = c.check_db_login(&labels(&[("env", "qa")]), "alice", "dev").err().map(|e| e.message).unwrap_or_default();
        assert!(e.contains("db_labels"), "{e}");
    }

    #[test]
    fn who_may_request_and_review_which_roles() {
        use crate::resource::role::{RequestConditions, ReviewConditions, Threshold};
        let requester = role(
            "access",
            RoleConditions {
                request: Some(RequestConditions {
                    roles: logins(&["prod-*", "^db-(read|write)$"]),
                    max_duration: Some("4h".into()),
                    thresholds: vec![Threshold { approve: Some(2), ..Default::default() }],
                    suggested_reviewers: logins(&["bob"]),
                    ..Default::default()
                }),
                ..Default::default()
            },
            RoleConditions {
                request: Some(RequestConditions { roles: logins(&["prod-root"]), ..Default::default() }),
                ..Default::default()
            },
        );
        let c = AccessChecker::new(&[requester], &Traits::new());
        assert!(c.can_request("prod-access") && c.can_request("db-read"), "globs and ^...$ expressions");
        assert!(!c.can_request("prod-root"), "deny.request wins");
        assert!(!c.can_request("db-admin") && !c.can_request("admin"), "nothing else");
        assert_eq!(c.request_max_duration(&logins(&["prod-access"])), Some(std::time::Duration::from_secs(4 * 3600)));
        assert_eq!(c.request_thresholds(&logins(&["prod-access"]))[0].approve, Some(2));
        assert_eq!(c.suggested_reviewers(), logins(&["bob"]));
        assert_eq!(c.request_access(), "optional");
        let reviewer = role(
            "reviewer",
            RoleConditions {
                review_requests: Some(ReviewConditions { roles: logins(&["prod-*"]), ..Default::default() }),
                ..Default::default()
            },
            RoleConditions {
                review_requests: Some(ReviewConditions { roles: logins(&["prod-root"]), ..Default::default() }),
                ..Default::default()
            },
        );
        let r = AccessChecker::new(&[reviewer], &Traits::new());
        assert!(r.can_review(&logins(&["prod-access"])));
        assert!(!r.can_review(&logins(&["prod-access", "db-read"])), "every role must be reviewable");
        assert!(!r.can_review(&logins(&["prod-root"])), "deny.review_requests wins");
        assert!(!AccessChecker::new(&[], &Traits::new()).can_review(&logins(&["prod-access"])), "deny by default");
    }

    fn traits(l: &[&str]) -> Traits {
        let mut t = Traits::new();
        t.insert("logins".into(), logins(l));
        t
    }

    fn forwarding(legacy: Option<bool>, local: Option<bool>, remote: Option<bool>, newer: bool) -> Role {
        use crate::resource::role::{ForwardSwitch, SshPortForwarding};
        let mut r = role("f", RoleConditions::default(), RoleConditions::default());
        r.spec.options.port_forwarding = legacy;
        if newer {
            r.spec.options.ssh_port_forwarding = Some(SshPortForwarding {
                local: local.map(|e| ForwardSwitch { enabled: Some(e) }),
                remote: remote.map(|e| ForwardSwitch { enabled: Some(e) }),
            });
        }
        r
    }

    #[test]
    fn port_forwarding_is_decided_as_teleport_decides_it() {
        let mode = |roles: &[Role]| AccessChecker::new(roles, &Traits::new()).port_forward_mode();
        // Teleport's own cases.
        assert_eq!(mode(&[forwarding(None, Some(true), Some(false), true)]), ForwardMode::Local, "allow + remote deny");
        assert_eq!(mode(&[forwarding(None, Some(false), Some(false), true), forwarding(Some(true), None, None, false)]), ForwardMode::On);
        assert_eq!(mode(&[forwarding(None, Some(true), Some(true), true), forwarding(Some(false), None, None, false)]), ForwardMode::On);
        assert_eq!(mode(&[forwarding(Some(false), None, None, false)]), ForwardMode::Off, "nothing newer + legacy false");
        // Unset everywhere: on (the older default).
        assert_eq!(mode(&[forwarding(None, None, None, false)]), ForwardMode::On);
        assert_eq!(mode(&[forwarding(None, Some(false), None, true)]), ForwardMode::Remote);
        // A newer block with no opinion cancels an older deny.
        assert_eq!(mode(&[forwarding(None, None, None, true), forwarding(Some(false), None, None, false)]), ForwardMode::On);
        assert!(ForwardMode::Local.local() && !ForwardMode::Local.remote());
        let refused = |roles: &[Role], remote| AccessChecker::new(roles, &Traits::new()).forward_refused_by(remote);
        assert_eq!(refused(&[forwarding(None, Some(true), Some(false), true)], false), None);
        assert_eq!(
            refused(&[forwarding(None, Some(true), Some(false), true)], true).as_deref(),
            Some("role \"f\" sets options.ssh_port_forwarding.remote.enabled to false")
        );
        assert_eq!(
            refused(&[forwarding(Some(false), None, None, false)], false).as_deref(),
            Some("role \"f\" sets options.port_forwarding to false")
        );
    }

    #[test]
    fn file_copy_needs_every_role_and_agent_forwarding_one_with_the_login() {
        let mut a = role("a", RoleConditions { logins: logins(&["root"]), ..Default::default() }, RoleConditions::default());
        let mut b = role("b", RoleConditions { logins: logins(&["visitor"]), ..Default::default() }, RoleConditions::default());
        let c = |roles: &[Role]| AccessChecker::new(roles, &Traits::new());
        assert!(c(&[a.clone(), b.clone()]).ssh_file_copy(), "default true");
        b.spec.options.ssh_file_copy = Some(false);
        assert!(!c(&[a.clone(), b.clone()]).ssh_file_copy(), "one false denies");
        assert!(!c(&[a.clone()]).forward_agent_for("root"), "default false");
        a.spec.options.forward_agent = Some(true);
        assert!(c(&[a.clone(), b.clone()]).forward_agent_for("root"));
        assert!(!c(&[a, b]).forward_agent_for("visitor"), "the role that forwards must have the login");
    }

    #[test]
    fn the_strictest_connection_limits_win() {
        let mut a = role("a", RoleConditions::default(), RoleConditions::default());
        let mut b = role("b", RoleConditions::default(), RoleConditions::default());
        let none = AccessChecker::new(&[a.clone(), b.clone()], &Traits::new());
        assert_eq!((none.max_sessions(), none.max_connections(), none.client_idle_timeout()), (None, None, None));
        a.spec.options.max_sessions = Some(10);
        b.spec.options.max_sessions = Some(3);
        a.spec.options.max_connections = Some(0);
        b.spec.options.max_connections = Some(2);
        a.spec.options.client_idle_timeout = Some("10m".into());
        b.spec.options.client_idle_timeout = Some("30s".into());
        let c = AccessChecker::new(&[a, b], &Traits::new());
        assert_eq!(c.max_sessions(), Some(3));
        assert_eq!(c.max_connections(), Some(2), "0 means no limit, not the strictest");
        assert_eq!(c.client_idle_timeout(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn login_needs_labels_and_login_in_the_same_role() {
        let a = role(
            "a",
            RoleConditions { logins: logins(&["visitor"]), node_labels: Some(one_label("env", "stage")), ..Default::default() },
            RoleConditions::default(),
        );
        let b = role(
            "b",
            RoleConditions { logins: logins(&["root"]), node_labels: Some(one_label("env", "prod")), ..Default::default() },
            RoleConditions::default(),
        );
        let c = AccessChecker::new(&[a, b], &Traits::new());
        assert!(c.check_node_login(&labels(&[("env", "stage")]), "visitor").is_ok());
        assert!(c.check_node_login(&labels(&[("env", "stage")]), "root").is_err());
        assert!(c.check_node_login(&labels(&[("env", "prod")]), "root").is_ok());
        assert!(c.check_node_login(&labels(&[]), "visitor").is_err());
    }

    #[test]
    fn the_explanation_agrees_with_the_decision() {
        let sel = |pairs: &[(&str, &str)]| -> crate::labels::Labels {
            pairs.iter().map(|(k, v)| (k.to_string(), crate::labels::LabelValues(vec![v.to_string()]))).collect()
        };
        let selectors = [None, Some(sel(&[])), Some(sel(&[("env", "prod")])), Some(sel(&[("*", "*")])), Some(sel(&[("env", "st*")]))];
        let login_sets: [&[&str]; 3] = [&[], &["visitor"], &["root", "visitor"]];
        let mut roles = Vec::new();
        for (i, s) in selectors.iter().enumerate() {
            for (j, l) in login_sets.iter().enumerate() {
                roles.push((format!("a{i}{j}"), s.clone(), logins(l)));
            }
        }
        let nodes = [labels(&[]), labels(&[("env", "prod")]), labels(&[("env", "stage")])];
        // Every pair of an allow role and a deny role, on every node, for two logins.
        for (an, asel, al) in &roles {
            for (dn, dsel, dl) in roles.iter().step_by(3) {
                let allow =
                    role(an, RoleConditions { node_labels: asel.clone(), logins: al.clone(), ..Default::default() }, Default::default());
                let deny =
                    role(dn, Default::default(), RoleConditions { node_labels: dsel.clone(), logins: dl.clone(), ..Default::default() });
                let c = AccessChecker::new(&[allow, deny], &traits(&[]));
                for n in &nodes {
                    for login in ["visitor", "root"] {
                        let ex = c.explain_node_login(n, login);
                        let verdict = !ex.iter().any(RoleLoginCheck::denies) && ex.iter().any(RoleLoginCheck::allows);
                        assert_eq!(verdict, c.check_node_login(n, login).is_ok(), "{an} {dn} {n:?} {login}");
                    }
                }
            }
        }
    }

    #[test]
    fn session_rules_give_all_own_or_nothing() {
        let presets = crate::resource::role::presets();
        let of = |name: &str| AccessChecker::new(&[presets.iter().find(|r| r.metadata.name == name).unwrap().clone()], &Traits::new());
        assert_eq!(of("auditor").session_scope("read"), SessionScope::All);
        assert_eq!(of("access").session_scope("list"), SessionScope::Own);
        assert_eq!(of("editor").session_scope("read"), SessionScope::All, "Teleport's editor lists and reads sessions");
        let plain = AccessChecker::new(&[role("visitor", RoleConditions::default(), RoleConditions::default())], &Traits::new());
        assert_eq!(plain.session_scope("read"), SessionScope::None);
        let deny = role(
            "no-sessions",
            RoleConditions::default(),
            RoleConditions {
                rules: vec![Rule { resources: vec!["session".into()], verbs: vec!["*".into()], where_: None, actions: vec![] }],
                ..Default::default()
            },
        );
        let both = AccessChecker::new(&[presets[2].clone(), deny], &Traits::new());
        assert_eq!(both.session_scope("read"), SessionScope::None, "deny wins");
    }

    #[test]
    fn deny_wins() {
        let allow = RoleConditions { logins: logins(&["root", "visitor"]), node_labels: Some(wildcard()), ..Default::default() };
        let deny_login = role("d", RoleConditions::default(), RoleConditions { logins: logins(&["root"]), ..Default::default() });
        let c = AccessChecker::new(&[role("a", allow.clone(), RoleConditions::default()), deny_login], &Traits::new());
        assert!(c.check_node_login(&labels(&[]), "root").is_err());
        assert!(c.check_node_login(&labels(&[]), "visitor").is_ok());
        assert_eq!(c.allowed_logins(), logins(&["visitor"]));
        let deny_labels =
            role("d", RoleConditions::default(), RoleConditions { node_labels: Some(one_label("env", "prod")), ..Default::default() });
        let c = AccessChecker::new(&[role("a", allow, RoleConditions::default()), deny_labels], &Traits::new());
        assert!(c.check_node_login(&labels(&[("env", "prod")]), "visitor").is_err());
        assert!(!c.can_see_node(&labels(&[("env", "prod")])));
        assert!(c.can_see_node(&labels(&[("env", "dev")])));
    }

    #[test]
    fn traits_expand_logins() {
        let access = crate::resource::role::presets().remove(0);
        let c = AccessChecker::new(&[access], &traits(&["root", "visitor", "-teleport-internal-join"]));
        assert_eq!(c.allowed_logins(), logins(&["root", "visitor"]));
        assert!(c.check_node_login(&labels(&[]), "visitor").is_ok());
        assert!(c.check_node_login(&labels(&[]), "ubuntu").is_err());
    }

    #[test]
    fn cluster_labels_rules() {
        let plain = role("p", RoleConditions { logins: logins(&["x"]), ..Default::default() }, RoleConditions::default());
        let c = AccessChecker::new(std::slice::from_ref(&plain), &Traits::new());
        assert!(c.check_cluster(&labels(&[])).is_ok(), "no selectors and no labels: allowed");
        assert!(c.check_cluster(&labels(&[("env", "demo")])).is_err(), "labelled cluster needs a matching role");
        let demo = role(
            "demo",
            RoleConditions { cluster_labels: Some(one_label("env", "demo")), ..Default::default() },
            RoleConditions::default(),
        );
        let c = AccessChecker::new(&[plain.clone(), demo.clone()], &Traits::new());
        assert!(c.check_cluster(&labels(&[("env", "demo")])).is_ok());
        assert!(c.check_cluster(&labels(&[("env", "prod")])).is_err());
        assert!(c.check_cluster(&labels(&[])).is_err(), "a selector exists, so unlabelled clusters need a match");
        let deny = role(
            "deny",
            RoleConditions::default(),
            RoleConditions { cluster_labels: Some(one_label("env", "demo")), ..Default::default() },
        );
        let c = AccessChecker::new(&[demo, deny], &Traits::new());
        assert!(c.check_cluster(&labels(&[("env", "demo")])).is_err());
        assert!(AccessChecker::new(&[], &Traits::new()).check_cluster(&labels(&[])).is_err());
    }

    #[test]
    fn rules() {
        let editor = crate::resource::role::presets().remove(1);
        let c = AccessChecker::new(&[editor], &Traits::new());
        assert!(c.check_rule("role", "create").is_ok());
        assert!(c.check_rule("trusted_cluster", "delete").is_ok());
        let access = crate::resource::role::presets().remove(0);
        let c = AccessChecker::new(&[access], &Traits::new());
        assert!(c.check_rule("role", "create").is_err());
        assert!(c.check_rule("node", "list").is_ok(), "implicit role");
        assert!(c.check_rule("cert_authority", "read").is_ok());
        let deny = role(
            "d",
            RoleConditions::default(),
            RoleConditions {
                rules: vec![Rule { resources: vec!["*".into()], verbs: vec!["*".into()], where_: None, actions: vec![] }],
                ..Default::default()
            },
        );
        let c = AccessChecker::new(&[crate::resource::role::presets().remove(1), deny], &Traits::new());
        assert!(c.check_rule("role", "read").is_err());
        assert!(c.check_rule("node", "list").is_err(), "deny beats the implicit role");
    }

    #[test]
    fn empty_selector_grants_nothing() {
        let r = role(
            "a",
            RoleConditions { logins: logins(&["x"]), node_labels: Some(Labels::new()), ..Default::default() },
            RoleConditions::default(),
        );
        let c = AccessChecker::new(&[r], &Traits::new());
        assert!(c.check_node_login(&labels(&[]), "x").is_err());
    }
}
