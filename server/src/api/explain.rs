//! `POST /v1/access/explain`: why a login is allowed or denied, answered by the cluster that
//! decides it (for a leaf's node, the leaf, reached through the root's tunnel with the user's
//! root certificate), over the same bundle its nodes decide with ([`crate::node::explain`]).
//!
//! Callers explain themselves, even when their roles map to nothing here (that is one of the
//! answers); who may read roles here sees the role map and rules, others the verdicts. Asking
//! about someone else (`user`, or `as` for a root's user) needs `read` on users and roles.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use shared::api::{ExplainIdentity, ExplainRequest, Explanation};
use shared::error::{Error, Result};
use shared::identity::{Caller, CertIdentity, UserIdentity};
use shared::rbac::AccessChecker;
use shared::resource::{CaType, Kind};

use super::{ApiResult, ApiState, JsonBody, client_cert, conn_info};
use crate::authz::{Context, Verb};
use crate::node::explain::{NodeInfo, Question, Trust, explain as explain_login, explain_cluster};

/// A caller whose certificate the TLS layer verified, with their context when their roles
/// apply here, and their certificate's identity either way.
pub struct Verified {
    ctx: Result<Context>,
    cert_user: Option<(UserIdentity, String)>,
}

impl FromRequestParts<Arc<ApiState>> for Verified {
    type Rejection = super::ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Arc<ApiState>) -> std::result::Result<Self, Self::Rejection> {
        let info = conn_info(parts);
        let cert = client_cert(&info)?;
        let ctx = state.authz.context(cert).await;
        let now = state.auth.clock.now().unix_timestamp();
        let in_time = now >= cert.not_before && now < cert.not_after;
        let cert_user = match cert.identity_json.as_deref().map(CertIdentity::from_json) {
            Some(Ok(CertIdentity::User(u))) if in_time && cert.issuer_ca_type == CaType::User.as_str() => {
                Some((u, cert.issuer_cluster.clone()))
            }
            _ => None,
        };
        Ok(Verified { ctx, cert_user })
    }
}

fn may_read_roles(ctx: &Context) -> bool {
    ctx.require_kind(Kind::Role, Verb::Read).is_ok()
}

fn require_admin(ctx: &Result<Context>) -> Result<&Context> {
    let ctx = ctx.as_ref().map_err(Clone::clone)?;
    ctx.require_kind(Kind::User, Verb::Read)?;
    ctx.require_kind(Kind::Role, Verb::Read)?;
    Ok(ctx)
}

/// `POST /v1/access/explain`. For a caller of this cluster whose certificate carries approved
/// access requests, a step names each request and the roles it added (on a leaf those roles are
/// the ones the role map maps).
pub async fn explain(
    State(s): State<Arc<ApiState>>,
    v: Verified,
    JsonBody(req): JsonBody<ExplainRequest>,
) -> ApiResult<axum::Json<Explanation>> {
    let requests = match (&v.ctx, &req.user, &req.as_identity) {
        (Ok(ctx), None, None) => match &ctx.caller {
            Caller::LocalUser(u) => u.active_requests.clone(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let axum::Json(mut ex) = explain_for(&s, v, req).await?;
    if !requests.is_empty() {
        let mut details = Vec::new();
        for id in &requests {
            match s.auth.access_request(id).await {
                Ok(r) => {
                    let by: Vec<&str> = r.spec.reviews.iter().map(|x| x.author.as_str()).collect();
                    let by = if by.is_empty() { "an admin".to_string() } else { by.join(", ") };
                    details.push(format!(
                        "access request {id} adds roles [{}] ({}, approved by {by}, until {})",
                        r.spec.roles.join(", "),
                        r.spec.state.as_str(),
                        shared::timefmt::rfc3339(r.spec.expires)
                    ));
                }
                Err(e) => details.push(format!("access request {id}: {}", e.message)),
            }
        }
        ex.steps.insert(0, shared::api::ExplainStep { check: "access requests in the certificate".into(), ok: None, details, fix: None });
    }
    Ok(axum::Json(ex))
}

async fn explain_for(s: &Arc<ApiState>, v: Verified, req: ExplainRequest) -> ApiResult<axum::Json<Explanation>> {
    let here = s.auth.cluster_name().to_string();
    if req.user.is_some() && req.as_identity.is_some() {
        return Err(Error::bad_parameter("give either user or as, not both").into());
    }
    // Whom it is about, their checker here (None when their roles do not apply here), and
    // whether the caller sees rules and every node.
    let (id, checker, show_rules): (ExplainIdentity, Option<AccessChecker>, bool) = match (&req.user, &req.as_identity) {
        (Some(name), None) => {
            require_admin(&v.ctx)?;
            let user = s.auth.services.user(name).await?.value;
            let checker = s.auth.checker_for_user(&user).await?;
            let id = ExplainIdentity {
                user: user.metadata.name.clone(),
                cluster: here.clone(),
                roles: user.spec.roles.clone(),
                traits: user.spec.traits.clone(),
                logins: crate::auth::cert_logins(&checker),
            };
            (id, Some(checker), true)
        }
        (None, Some(a)) => {
            require_admin(&v.ctx)?;
            (a.clone(), None, true)
        }
        _ => match (&v.ctx, &v.cert_user) {
            (Ok(ctx), _) => {
                let id = match &ctx.caller {
                    Caller::LocalUser(u) => ExplainIdentity::of(u, &here),
                    Caller::RemoteUser { identity: u, cluster } => ExplainIdentity::of(u, cluster),
                    Caller::Host(_) => return Err(Error::bad_parameter("name the user to explain for with --user").into()),
                };
                (id, Some(ctx.checker.clone()), may_read_roles(ctx))
            }
            // Their roles give them nothing here (say, the role map maps none): explain that.
            (Err(_), Some((u, cluster))) => (ExplainIdentity::of(u, cluster), None, false),
            (Err(e), None) => return Err(e.clone().into()),
        },
    };

    if let Some(leaf) = req.cluster.as_deref().filter(|c| *c != here) {
        let checker = checker.ok_or_else(|| Error::bad_parameter("cluster_labels are checked by the user's own cluster"))?;
        let rc = s.auth.services.remote_cluster(leaf).await?.map(|v| v.value);
        let visible = rc.as_ref().filter(|rc| show_rules || checker.check_cluster(&rc.metadata.labels).is_ok());
        return Ok(axum::Json(explain_cluster(&here, &id, &checker, leaf, visible.map(|rc| &rc.metadata.labels))));
    }
    if let Some(kube) = req.kube_cluster.as_deref() {
        let roles_here = match (&checker, &v.ctx) {
            (Some(c), _) => Ok(c),
            (None, Err(e)) => Err(e.message.clone()),
            (None, Ok(_)) => Err("explaining a root's user's Kubernetes access needs their own certificate".to_string()),
        };
        let record = s.auth.services.get::<shared::resource::KubeCluster>(&crate::services::keys::kube_cluster(kube)).await?;
        let labels = record
            .map(|r| r.value.metadata.labels)
            .filter(|l| show_rules || roles_here.as_ref().is_ok_and(|c| c.check_kube_cluster(l).is_ok()));
        let ex = crate::access::kube::explain::explain_kube(&here, &id, roles_here, kube, labels.as_ref(), show_rules);
        return Ok(axum::Json(ex));
    }
    if req.login.is_empty() || req.node.is_empty() {
        return Err(Error::bad_parameter("name the login and the node: login@node").into());
    }

    let trust = if id.cluster == here {
        Trust::Active
    } else if s.auth.services.trusted_cluster(&id.cluster).await?.is_none() {
        Trust::Unknown
    } else if s.auth.services.ca(CaType::User, &id.cluster, false).await?.is_some() {
        Trust::Active
    } else if s.auth.services.ca(CaType::User, &id.cluster, true).await?.is_some() {
        Trust::Disabled
    } else {
        Trust::Unknown
    };
    let nodes = s.auth.services.nodes().await?;
    let node = nodes
        .iter()
        .filter(|n| n.spec.hostname == req.node || n.metadata.name == req.node)
        .find(|n| show_rules || checker.as_ref().is_some_and(|c| c.can_see_node(&n.metadata.labels)))
        .map(|n| NodeInfo { hostname: n.spec.hostname.clone(), name: n.metadata.name.clone(), labels: n.metadata.labels.clone() });
    let bundle = s.auth.node_authz_bundle(0, Duration::ZERO).await?;
    let q = Question { login: &req.login, node_query: &req.node, node: node.as_ref(), id: &id, trust, show_rules };
    let ex = explain_login(&bundle, &q, s.auth.clock.now());
    tracing::debug!(user = %id.user, origin = %id.cluster, login = %req.login, node = %req.node, allowed = ex.allowed, "access explained");
    Ok(axum::Json(ex))
}
