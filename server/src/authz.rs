//! The authorizing facade: turns a verified client certificate into a caller [`Context`]
//! (which roles apply, with which traits) and answers "may this caller do that?".
//!
//! Every authenticated HTTP handler obtains a `Context` here and calls one of its `require_*`
//! methods before touching the auth service. Local users get their certificate's roles; users
//! of a trusted root get the roles the root's `role_map` gives them (never their root roles);
//! hosts get only what their system role needs.

use std::sync::Arc;

use shared::certs::PeerCert;
use shared::error::{Error, Result};
use shared::identity::{Caller, CertIdentity, HostIdentity, UserIdentity};
use shared::rbac::AccessChecker;
use shared::resource::lock::Subject;
use shared::resource::role::{RoleConditions, RoleSpec, Rule};
use shared::resource::token::SystemRole;
use shared::resource::{CaType, Kind, Role};
use shared::template::Traits;

use crate::auth::AuthServer;

/// Who is calling, and what their roles allow.
#[derive(Debug, Clone)]
pub struct Context {
    /// The caller.
    pub caller: Caller,
    /// Roles (mapped for remote users), traits applied.
    pub checker: AccessChecker,
}

/// API verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// List objects.
    List,
    /// Read one object.
    Read,
    /// Create.
    Create,
    /// Replace.
    Update,
    /// Delete.
    Delete,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::List => "list",
            Verb::Read => "read",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Delete => "delete",
        }
    }
}

impl Context {
    /// Which sessions the caller's roles let it `verb` (`list` or `read`): every one for this
    /// cluster's administrator identity, else the `session` rules'.
    pub fn session_scope(&self, verb: &str) -> shared::rbac::SessionScope {
        if self.is_admin() { shared::rbac::SessionScope::All } else { self.checker.session_scope(verb) }
    }

    /// The caller's display name (audit events).
    pub fn name(&self) -> String {
        match &self.caller {
            Caller::LocalUser(u) => u.username.clone(),
            Caller::RemoteUser { .. } => self.caller.name(),
            Caller::Host(h) if h.role == SystemRole::Admin => "admin".into(),
            Caller::Host(h) => format!("{}.{}", h.host_id, h.role),
        }
    }

    /// True for the cluster admin identity (tctl on the auth host).
    pub fn is_admin(&self) -> bool {
        matches!(&self.caller, Caller::Host(h) if h.role == SystemRole::Admin)
    }

    /// Requires a rule allowing `verb` on `kind` (the admin identity may do everything).
    pub fn require(&self, kind: &str, verb: Verb) -> Result<()> {
        if self.is_admin() {
            return Ok(());
        }
        if let Caller::Host(h) = &self.caller {
            return Err(Error::access_denied(format!("a {} cannot perform {:?} on {kind:?}", h.role, verb.as_str())));
        }
        let r = self.checker.check_rule(kind, verb.as_str());
        if let Err(e) = &r {
            tracing::debug!(caller = %self.name(), roles = ?self.checker.role_names(), kind, verb = verb.as_str(), reason = %e, "API call denied by role rules");
        }
        r
    }

    /// Requires a rule on a resource kind.
    pub fn require_kind(&self, kind: Kind, verb: Verb) -> Result<()> {
        self.require(kind.as_str(), verb)
    }

    /// Requires a host of `role` and returns it.
    pub fn require_host(&self, role: SystemRole) -> Result<&HostIdentity> {
        match &self.caller {
            Caller::Host(h) if h.role == role => Ok(h),
            _ => Err(Error::access_denied(format!("only a {role} may call this"))),
        }
    }

    /// Requires a user of this cluster (not a remote user, not a host).
    pub fn require_local_user(&self) -> Result<&UserIdentity> {
        match &self.caller {
            Caller::LocalUser(u) => Ok(u),
            Caller::RemoteUser { cluster, .. } => {
                Err(Error::access_denied(format!("users of cluster {cluster:?} cannot do this here; sign in to this cluster directly")))
            }
            Caller::Host(_) => Err(Error::access_denied("only users may call this")),
        }
    }
}

/// Builds contexts from verified client certificates.
#[derive(Clone)]
pub struct Authorizer {
    auth: Arc<AuthServer>,
}

/// The synthetic role of the admin identity.
fn admin_role() -> Role {
    Role::new(
        "admin",
        RoleSpec {
            allow: RoleConditions {
                rules: vec![Rule { resources: vec!["*".into()], verbs: vec!["*".into()], where_: None, actions: vec![] }],
                ..Default::default()
            },
            ..Default::default()
        },
    )
}

impl Authorizer {
    /// An authorizer over the auth service.
    pub fn new(auth: Arc<AuthServer>) -> Authorizer {
        Authorizer { auth }
    }

    /// Resolves a client certificate (already chain-verified by TLS) into a context.
    pub async fn context(&self, peer: &PeerCert) -> Result<Context> {
        let now = self.auth.clock.now().unix_timestamp();
        if now < peer.not_before || now >= peer.not_after {
            return Err(Error::access_denied("your certificate has expired; run 'tsh login' again"));
        }
        let local = self.auth.cluster_name().to_string();
        let identity = CertIdentity::from_json(
            peer.identity_json.as_deref().ok_or_else(|| Error::access_denied("the client certificate carries no identity"))?,
        )?;
        let ca_type =
            CaType::parse(&peer.issuer_ca_type).map_err(|_| Error::access_denied("the client certificate has an unknown issuer"))?;
        // The issuing CA must be accepted *now*: the TLS layer's trust list may lag a change.
        // Hosts are accepted from this cluster only (below).
        if ca_type == CaType::User && self.auth.trusted_cas().await?.user_ca(&peer.issuer_cluster).is_none() {
            return Err(Error::access_denied(format!("certificates of cluster {:?} are not trusted here", peer.issuer_cluster)));
        }
        let issued_at = shared::identity::tls_cert_issued_at(peer.not_before);
        let locks = self.auth.lock_set().await?;
        let now_t = self.auth.clock.now();
        let locked = |l: Option<&shared::resource::Lock>| match l {
            Some(lock) => Err(Error::access_denied(lock.refusal())),
            None => Ok(()),
        };
        match (ca_type, identity) {
            (CaType::Host, CertIdentity::Host(h)) if peer.issuer_cluster == local => {
                // A locked node may not heartbeat or fetch its bundle (Teleport: "a matching node
                // is also prevented from heartbeating").
                let s = Subject { server_id: Some(&h.host_id), node_name: Some(&h.nodename), ..Default::default() };
                if h.role != SystemRole::Admin {
                    locked(locks.find(&s, &local, now_t))?;
                }
                let roles = if h.role == SystemRole::Admin { vec![admin_role()] } else { vec![] };
                Ok(Context { checker: AccessChecker::new(&roles, &Traits::new()), caller: Caller::Host(h) })
            }
            (CaType::User, CertIdentity::User(u)) => {
                let cluster = peer.issuer_cluster.clone();
                let (mut roles, checker) = self.auth.access_for(&u, &cluster).await?;
                roles.extend(u.roles.iter().cloned());
                let s = Subject {
                    user: Some(&u.username),
                    roles: &roles,
                    issued_at: Some(issued_at),
                    requests: &u.active_requests,
                    ..Default::default()
                };
                locked(locks.find(&s, &cluster, now_t))?;
                if cluster == local {
                    Ok(Context { checker, caller: Caller::LocalUser(u) })
                } else {
                    Ok(Context { checker, caller: Caller::RemoteUser { identity: u, cluster } })
                }
            }
            _ => Err(Error::access_denied("the client certificate does not match its issuer")),
        }
    }
}
