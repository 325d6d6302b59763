//! `access_request` (v3): a user asks for roles for a while; reviewers approve or deny; an
//! approved request's roles join the user's certificate until the request's access expiry.
//! The decision is pure: [`AccessRequest::review`] applies one review against the thresholds
//! the request was created with, and [`AccessRequest::counting`] recounts with only the
//! reviewers who still count (a deleted or locked reviewer's approval counts for nothing).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Metadata;
use super::role::Threshold;
use crate::error::{Error, Result};

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum RequestState {
    /// Waiting for reviews.
    #[default]
    Pending,
    /// Approved: its roles may be used until its access expiry.
    Approved,
    /// Denied (also after an approval: its roles end).
    Denied,
}

impl RequestState {
    /// Teleport's name (`PENDING`, `APPROVED`, `DENIED`).
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "PENDING",
            RequestState::Approved => "APPROVED",
            RequestState::Denied => "DENIED",
        }
    }
}

/// One review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessReview {
    /// Who reviewed.
    pub author: String,
    /// `APPROVED` or `DENIED`.
    pub proposed_state: RequestState,
    /// Why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// When.
    #[serde(with = "crate::timefmt::rfc3339_serde")]
    pub created: OffsetDateTime,
}

/// What a request asks and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessRequestSpec {
    /// The requester.
    pub user: String,
    /// The roles asked for.
    pub roles: Vec<String>,
    /// Where it stands.
    pub state: RequestState,
    /// When it was made.
    #[serde(with = "crate::timefmt::rfc3339_serde")]
    pub created: OffsetDateTime,
    /// When the access it grants ends (and the request with it).
    #[serde(with = "crate::timefmt::rfc3339_serde")]
    pub expires: OffsetDateTime,
    /// The requester's reason.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_reason: String,
    /// The deciding review's reason.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resolve_reason: String,
    /// Reviewers the requester suggested.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggested_reviewers: Vec<String>,
    /// The reviews, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviews: Vec<AccessReview>,
    /// The thresholds it was created under (none: one approval or one denial decides).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Threshold>,
}

/// An access request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessRequest {
    /// Always `access_request`.
    pub kind: String,
    /// `v3`.
    pub version: String,
    /// The request's id (a UUID) as its name.
    pub metadata: Metadata,
    /// What it asks.
    pub spec: AccessRequestSpec,
}

impl AccessRequest {
    /// A pending request by `user` for `roles`, ending at `expires`.
    pub fn new(id: &str, user: &str, roles: Vec<String>, reason: &str, now: OffsetDateTime, expires: OffsetDateTime) -> AccessRequest {
        AccessRequest {
            kind: "access_request".into(),
            version: "v3".into(),
            metadata: Metadata { name: id.into(), expires: Some(expires), ..Default::default() },
            spec: AccessRequestSpec {
                user: user.into(),
                roles,
                state: RequestState::Pending,
                created: now,
                expires,
                request_reason: reason.into(),
                resolve_reason: String::new(),
                suggested_reviewers: Vec::new(),
                reviews: Vec::new(),
                thresholds: Vec::new(),
            },
        }
    }

    /// The request's id.
    pub fn id(&self) -> &str {
        &self.metadata.name
    }

    /// Approvals needed and denials that decide: the largest of the thresholds (every one must
    /// be met), one of each by default.
    pub fn needed(&self) -> (u32, u32) {
        let approve = self.spec.thresholds.iter().filter_map(|t| t.approve).max().unwrap_or(1).max(1);
        let deny = self.spec.thresholds.iter().filter_map(|t| t.deny).max().unwrap_or(1).max(1);
        (approve, deny)
    }

    /// The state the reviews of the authors `counts` accepts decide.
    pub fn counting(&self, counts: impl Fn(&str) -> bool) -> RequestState {
        let (approve, deny) = self.needed();
        let mut approvals = 0;
        let mut denials = 0;
        for r in self.spec.reviews.iter().filter(|r| counts(&r.author)) {
            match r.proposed_state {
                RequestState::Approved => approvals += 1,
                RequestState::Denied => denials += 1,
                RequestState::Pending => {}
            }
            if denials >= deny {
                return RequestState::Denied;
            }
            if approvals >= approve {
                return RequestState::Approved;
            }
        }
        RequestState::Pending
    }

    /// Applies `review` by `author` at `now`: one review per reviewer, never by the requester,
    /// never on an expired request; a denial after approval ends the access. Returns the new
    /// state.
    pub fn review(&mut self, author: &str, state: RequestState, reason: &str, now: OffsetDateTime) -> Result<RequestState> {
        if author == self.spec.user {
            return Err(Error::access_denied("you cannot review your own access request; ask another reviewer"));
        }
        if now >= self.spec.expires {
            return Err(Error::bad_parameter(format!("access request {} has expired", self.id())));
        }
        if state == RequestState::Pending {
            return Err(Error::bad_parameter("a review approves or denies"));
        }
        if self.spec.reviews.iter().any(|r| r.author == author) {
            return Err(Error::already_exists(format!("you have already reviewed access request {}", self.id())));
        }
        if self.spec.state == RequestState::Denied {
            return Err(Error::bad_parameter(format!("access request {} is already denied", self.id())));
        }
        self.spec.reviews.push(AccessReview { author: author.into(), proposed_state: state, reason: reason.into(), created: now });
        let decided = if self.spec.state == RequestState::Approved && state == RequestState::Denied {
            RequestState::Denied
        } else {
            self.counting(|_| true)
        };
        if decided != self.spec.state && decided != RequestState::Pending {
            self.spec.resolve_reason = reason.into();
        }
        if decided != RequestState::Pending {
            self.spec.state = decided;
        }
        Ok(self.spec.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn req(thresholds: Vec<Threshold>) -> AccessRequest {
        let now = datetime!(2026-12-07 10:00 UTC);
        let mut r = AccessRequest::new("id1", "alice", vec!["prod-access".into()], "fix the db", now, now + time::Duration::hours(1));
        r.spec.thresholds = thresholds;
        r
    }

    #[test]
    fn one_approval_decides_by_default_and_the_requester_cannot_review() {
        let now = datetime!(2026-12-07 10:05 UTC);
        let mut r = req(vec![]);
        let e = r.review("alice", RequestState::Approved, "", now).err().map(|e| e.message).unwrap_or_default();
        assert!(e.contains("your own access request"), "{e}");
        assert_eq!(r.review("bob", RequestState::Approved, "ok", now).unwrap(), RequestState::Approved);
        assert_eq!(r.spec.resolve_reason, "ok");
        assert!(r.review("bob", RequestState::Denied, "", now).is_err(), "one review per reviewer");
        // Denied after approval: the access ends.
        assert_eq!(r.review("carol", RequestState::Denied, "wrong ticket", now).unwrap(), RequestState::Denied);
        assert!(r.review("dave", RequestState::Approved, "", now).is_err(), "a denial is final");
        let late = datetime!(2026-12-07 11:00 UTC);
        assert!(req(vec![]).review("bob", RequestState::Approved, "", late).is_err(), "expired");
    }

    #[test]
    fn thresholds_need_that_many_and_only_counted_reviewers_count() {
        let now = datetime!(2026-12-07 10:05 UTC);
        let two = Threshold { approve: Some(2), deny: Some(2), ..Default::default() };
        let mut r = req(vec![two]);
        assert_eq!(r.needed(), (2, 2));
        assert_eq!(r.review("bob", RequestState::Approved, "", now).unwrap(), RequestState::Pending);
        assert_eq!(r.review("carol", RequestState::Denied, "", now).unwrap(), RequestState::Pending);
        assert_eq!(r.review("dave", RequestState::Approved, "", now).unwrap(), RequestState::Approved);
        // bob is deleted (or locked) later: his approval no longer counts.
        assert_eq!(r.counting(|a| a != "bob"), RequestState::Pending);
        assert_eq!(r.counting(|_| true), RequestState::Approved);
    }
}
