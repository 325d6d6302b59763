//! The one error type every library layer returns.
//!
//! Teleport classifies every failure by *kind* (its `trace` package), and the kind decides the
//! HTTP status on the wire and how a CLI reports it. We keep the same classification so that an
//! error crossing the REST API arrives with the same kind it left with: the server maps kind to
//! status in [`Kind::http_status`], the client maps status back in [`Kind::from_http_status`].

use std::fmt;

/// What kind of failure this is. Decides the HTTP status and, for callers, whether to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The object does not exist (or the caller may not know that it does).
    NotFound,
    /// The caller is not allowed to do this.
    AccessDenied,
    /// The input is malformed or violates a rule.
    BadParameter,
    /// An object with this name already exists.
    AlreadyExists,
    /// Someone else changed the object since it was read.
    CompareFailed,
    /// A peer could not be reached, or dropped the connection.
    ConnectionProblem,
    /// Too many attempts; try again later.
    LimitExceeded,
    /// Not implemented by this product.
    NotImplemented,
    /// A bug or an unexpected condition on our side.
    Internal,
}

impl Kind {
    /// The HTTP status for this kind (Teleport's `trace` mapping; reference §1.2).
    pub fn http_status(self) -> u16 {
        match self {
            Kind::NotFound => 404,
            Kind::AccessDenied => 403,
            Kind::BadParameter => 400,
            Kind::AlreadyExists => 409,
            Kind::CompareFailed => 412,
            Kind::ConnectionProblem => 503,
            Kind::LimitExceeded => 429,
            Kind::NotImplemented => 501,
            Kind::Internal => 500,
        }
    }

    /// The kind a client infers from an HTTP status.
    pub fn from_http_status(status: u16) -> Kind {
        match status {
            404 => Kind::NotFound,
            401 | 403 => Kind::AccessDenied,
            400 | 422 => Kind::BadParameter,
            409 => Kind::AlreadyExists,
            412 => Kind::CompareFailed,
            502..=504 => Kind::ConnectionProblem,
            429 => Kind::LimitExceeded,
            501 => Kind::NotImplemented,
            _ => Kind::Internal,
        }
    }
}

/// A classified error with a message meant for the person at the keyboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The classification.
    pub kind: Kind,
    /// One line: what went wrong (and, where we know it, what to do).
    pub message: String,
}

impl Error {
    /// Builds an error of `kind`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
    /// Shorthand for [`Kind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, message)
    }
    /// Shorthand for [`Kind::AccessDenied`].
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(Kind::AccessDenied, message)
    }
    /// Shorthand for [`Kind::BadParameter`].
    pub fn bad_parameter(message: impl Into<String>) -> Self {
        Self::new(Kind::BadParameter, message)
    }
    /// Shorthand for [`Kind::AlreadyExists`].
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(Kind::AlreadyExists, message)
    }
    /// Shorthand for [`Kind::CompareFailed`].
    pub fn compare_failed(message: impl Into<String>) -> Self {
        Self::new(Kind::CompareFailed, message)
    }
    /// Shorthand for [`Kind::ConnectionProblem`].
    pub fn connection_problem(message: impl Into<String>) -> Self {
        Self::new(Kind::ConnectionProblem, message)
    }
    /// Shorthand for [`Kind::LimitExceeded`].
    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(Kind::LimitExceeded, message)
    }
    /// Shorthand for [`Kind::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, message)
    }
    /// True when the error is of `kind`.
    pub fn is(&self, kind: Kind) -> bool {
        self.kind == kind
    }
    /// Prefixes the message with context, keeping the kind.
    pub fn context(self, what: impl fmt::Display) -> Self {
        Error { kind: self.kind, message: format!("{what}: {}", self.message) }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The result type of every library layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The JSON error body on the wire: `{"error":{"message":"..."}}` (reference §1.2, §7.7).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorBodyInner,
}

/// Inner part of [`ErrorBody`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ErrorBodyInner {
    /// The message shown to the user.
    pub message: String,
}

impl ErrorBody {
    /// Wraps a message.
    pub fn new(message: impl Into<String>) -> Self {
        ErrorBody { error: ErrorBodyInner { message: message.into() } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_for_every_kind() {
        for kind in [
            Kind::NotFound,
            Kind::AccessDenied,
            Kind::BadParameter,
            Kind::AlreadyExists,
            Kind::CompareFailed,
            Kind::ConnectionProblem,
            Kind::LimitExceeded,
            Kind::NotImplemented,
            Kind::Internal,
        ] {
            assert_eq!(Kind::from_http_status(kind.http_status()), kind);
        }
    }

    #[test]
    fn context_keeps_kind() {
        let e = Error::not_found("role \"x\" is not found").context("loading");
        assert_eq!(e.kind, Kind::NotFound);
        assert_eq!(e.message, "loading: role \"x\" is not found");
    }
}
