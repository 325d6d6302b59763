//! Access requests: a user of this cluster asks for roles their roles' `allow.request` names;
//! reviewers whose `review_requests` cover every role asked approve or deny; an approved
//! request's roles join the user's certificates (`tsh login --request-id`) until the request's
//! access expiry. A leaf maps those roles through its role map like the user's own: nothing
//! about requests crosses the trust but the roles in the certificate and the request's id.
//!
//! Reviews are written with compare-and-swap on the record, retried: two reviewers at once (on
//! one process or two sharing PostgreSQL) end in one state with both reviews counted.

use serde_json::json;
use shared::error::{Error, Result};
use shared::resource::User;
use shared::resource::access_request::{AccessRequest, RequestState};

use super::AuthServer;
use crate::audit::codes;
use crate::services::keys;

/// Most attempts at a review that lost a race to another.
const REVIEW_ATTEMPTS: usize = 20;

pub use shared::api::{CreateAccessRequest as CreateRequest, ReviewAccessRequest as ReviewRequest};

impl AuthServer {
    /// Creates a pending request by `user` (checked against their roles).
    pub async fn create_access_request(&self, user: &User, req: CreateRequest) -> Result<AccessRequest> {
        let name = &user.metadata.name;
        let mut roles: Vec<String> = Vec::new();
        for r in req.roles.iter().flat_map(|r| r.split(',')).map(str::trim).filter(|r| !r.is_empty()) {
            if !roles.iter().any(|x| x == r) {
                roles.push(r.to_string());
            }
        }
        if roles.is_empty() {
            return Err(Error::bad_parameter("name the roles to request: --roles=ROLE[,ROLE]"));
        }
        if roles.len() > 32 {
            return Err(Error::bad_parameter("at most 32 roles in one request"));
        }
        if req.reason.len() > 4096 {
            return Err(Error::bad_parameter("the reason is longer than 4096 characters"));
        }
        let checker = self.checker_for_user(user).await?;
        for r in &roles {
            if self.services.get::<shared::resource::Role>(&keys::role(r)).await?.is_none() {
                return Err(Error::not_found(format!("role {r:?} is not found; 'tctl get roles' lists them")));
            }
            if user.spec.roles.contains(r) {
                return Err(Error::bad_parameter(format!("you already hold role {r:?}")));
            }
            if !checker.can_request(r) {
                return Err(Error::access_denied(format!(
                    "user {name:?} can not request role {r:?} (no allow.request.roles of your roles names it)"
                )));
            }
        }
        if checker.request_access() == "reason" && req.reason.trim().is_empty() {
            return Err(Error::bad_parameter("your roles require a reason for access requests: give one with --reason"));
        }
        let limit = checker.request_max_duration(&roles).unwrap_or_else(|| checker.max_session_ttl());
        let wanted = match &req.max_duration {
            Some(d) if !d.is_empty() => shared::timefmt::parse_duration(d).map_err(|e| e.context("--max-duration"))?,
            _ => limit,
        };
        if wanted > limit {
            return Err(Error::bad_parameter(format!(
                "--max-duration {} is longer than your roles allow for {} ({})",
                shared::timefmt::go_duration(wanted),
                roles.join(","),
                shared::timefmt::go_duration(limit)
            )));
        }
        let now = self.clock.now();
        let id = uuid::Uuid::new_v4().to_string();
        let mut r = AccessRequest::new(&id, name, roles, req.reason.trim(), now, now + wanted);
        r.spec.thresholds = checker.request_thresholds(&r.spec.roles);
        r.spec.suggested_reviewers =
            if req.suggested_reviewers.is_empty() { checker.suggested_reviewers() } else { req.suggested_reviewers };
        self.services.apply(vec![self.services.create_op(&keys::access_request(&id), &r)?]).await?;
        self.audit
            .emit(
                codes::ACCESS_REQUEST_CREATE,
                json!({"id": id, "user": name, "roles": r.spec.roles, "reason": r.spec.request_reason, "state": "PENDING",
                       "expires": shared::timefmt::rfc3339(r.spec.expires)}),
            )
            .await;
        Ok(r)
    }

    /// A request by id.
    pub async fn access_request(&self, id: &str) -> Result<AccessRequest> {
        shared::names::check_name("access request id", id)?;
        Ok(self
            .services
            .must_get::<AccessRequest>(&keys::access_request(id), || format!("access request {id:?} is not found"))
            .await?
            .value)
    }

    /// Every live request.
    pub async fn access_requests(&self) -> Result<Vec<AccessRequest>> {
        let now = self.clock.now();
        let mut all: Vec<AccessRequest> = self.services.list(keys::ACCESS_REQUESTS).await?;
        all.retain(|r| r.spec.expires > now);
        all.sort_by_key(|r| std::cmp::Reverse(r.spec.created));
        Ok(all)
    }

    /// Reviews request `id` as `reviewer` (whose roles must cover every role asked). `admin`:
    /// an admin's decision (`tctl request approve|deny`), which decides whatever the thresholds.
    pub async fn review_access_request(&self, id: &str, reviewer: &str, admin: bool, review: ReviewRequest) -> Result<AccessRequest> {
        if review.reason.len() > 4096 {
            return Err(Error::bad_parameter("the reason is longer than 4096 characters"));
        }
        for _ in 0..REVIEW_ATTEMPTS {
            let v = self
                .services
                .must_get::<AccessRequest>(&keys::access_request(id), || format!("access request {id:?} is not found"))
                .await?;
            let mut r = v.value;
            let before = r.spec.state;
            let now = self.clock.now();
            if admin {
                if now >= r.spec.expires {
                    return Err(Error::bad_parameter(format!("access request {id} has expired")));
                }
                r.spec.state = review.state;
                r.spec.resolve_reason = review.reason.clone();
            } else {
                if r.spec.user == reviewer {
                    return Err(Error::access_denied("you cannot review your own access request; ask another reviewer"));
                }
                let user = self.services.user(reviewer).await?.value;
                let checker = self.checker_for_user(&user).await?;
                if !checker.can_review(&r.spec.roles) {
                    return Err(Error::access_denied(format!(
                        "user {reviewer:?} may not review requests for roles {} (no review_requests.roles of yours covers them)",
                        r.spec.roles.join(",")
                    )));
                }
                r.review(reviewer, review.state, &review.reason, now)?;
            }
            match self.services.apply_racing(vec![self.services.cas_op(&keys::access_request(id), &r, v.revision)?]).await {
                Ok(_) => {}
                Err(e) if e.is(shared::Kind::CompareFailed) => continue,
                Err(e) => return Err(e),
            }
            if !admin {
                self.audit
                    .emit(
                        codes::ACCESS_REQUEST_REVIEW,
                        json!({"id": id, "user": r.spec.user, "roles": r.spec.roles, "reviewer": reviewer,
                               "proposed_state": review.state.as_str(), "reason": review.reason, "state": r.spec.state.as_str()}),
                    )
                    .await;
            }
            if before == RequestState::Approved && r.spec.state == RequestState::Denied {
                self.end_request(&r, &format!("access request {id} was denied after approval"), reviewer).await?;
            }
            if r.spec.state != before {
                self.audit
                    .emit(
                        codes::ACCESS_REQUEST_UPDATE,
                        json!({"id": id, "user": r.spec.user, "roles": r.spec.roles, "state": r.spec.state.as_str(),
                               "updated_by": reviewer, "reason": r.spec.resolve_reason,
                               "reviewers": r.spec.reviews.iter().map(|x| x.author.clone()).collect::<Vec<_>>()}),
                    )
                    .await;
            }
            return Ok(r);
        }
        Err(Error::connection_problem(format!("access request {id} is being reviewed by many at once; try again")))
    }

    /// Deletes request `id` (`tctl request rm`): certificates carrying it lose its roles at
    /// their next use here.
    pub async fn delete_access_request(&self, id: &str, by: &str) -> Result<()> {
        let r = self.access_request(id).await?;
        if r.spec.state == RequestState::Approved {
            self.end_request(&r, &format!("access request {id} was deleted"), by).await?;
        }
        self.services.apply(vec![crate::storage::Op::Delete { key: keys::access_request(id) }]).await?;
        self.audit.emit(codes::ACCESS_REQUEST_DELETE, json!({"id": id, "user": r.spec.user, "updated_by": by})).await;
        Ok(())
    }

    /// Ends what an approved request gave, everywhere: a lock on the request (Teleport's
    /// `access_request` lock target) until the request would have expired, which ends live
    /// sessions and refuses certificates carrying it here and, pushed with the root's other
    /// locks, on every leaf.
    async fn end_request(&self, r: &AccessRequest, why: &str, by: &str) -> Result<()> {
        use shared::resource::lock::{LockSpec, LockTarget};
        let spec = LockSpec {
            target: LockTarget { access_request: r.id().to_string(), ..Default::default() },
            message: why.to_string(),
            expires: Some(r.spec.expires),
            ..Default::default()
        };
        let lock = shared::resource::Lock::new(&format!("access-request-{}", r.id()), spec);
        self.upsert_lock(lock, true, None, by).await?;
        Ok(())
    }

    /// The requests `user` asks to use (`tsh login --request-id`): theirs, approved by reviewers
    /// who still exist and are not locked (or by an admin), not expired. Their roles and the
    /// latest moment the certificate may live.
    pub async fn usable_requests(&self, user: &str, ids: &[String]) -> Result<(Vec<String>, Option<time::OffsetDateTime>)> {
        let mut roles: Vec<String> = Vec::new();
        let mut until: Option<time::OffsetDateTime> = None;
        let now = self.clock.now();
        for id in ids {
            let r = self.access_request(id).await?;
            if r.spec.user != user {
                return Err(Error::access_denied(format!("access request {id} is not yours")));
            }
            if r.spec.expires <= now {
                return Err(Error::access_denied(format!("access request {id} has expired; make a new one")));
            }
            let still_approved = if r.spec.reviews.is_empty() {
                r.spec.state == RequestState::Approved
            } else if r.spec.state == RequestState::Approved {
                let mut live: Vec<String> = Vec::new();
                for rev in &r.spec.reviews {
                    if let Ok(Some(u)) = self.services.get::<User>(&keys::user(&rev.author)).await
                        && self.check_issuance_locks(&rev.author, &u.value.spec.roles).await.is_ok()
                    {
                        live.push(rev.author.clone());
                    }
                }
                r.counting(|a| live.iter().any(|x| x == a)) == RequestState::Approved
            } else {
                false
            };
            if !still_approved {
                let why = match r.spec.state {
                    RequestState::Pending => "is still pending".to_string(),
                    RequestState::Denied => format!(
                        "was denied ({})",
                        if r.spec.resolve_reason.is_empty() { "no reason given" } else { &r.spec.resolve_reason }
                    ),
                    RequestState::Approved => "no longer has enough approvals from reviewers who still may review".to_string(),
                };
                return Err(Error::access_denied(format!("access request {id} {why}")));
            }
            for role in r.spec.roles {
                if !roles.contains(&role) {
                    roles.push(role);
                }
            }
            until = Some(until.map_or(r.spec.expires, |u| u.min(r.spec.expires)));
        }
        Ok((roles, until))
    }
}
