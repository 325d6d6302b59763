//! The one error type every library layer returns.
//!
//! Teleport classifies every failure by *kind* (its `trace` package), and the kind decides the
//! HTTP status on the wire and how a CLI reports it. We keep the same classification so that an
//! error crossing the REST API arrives with the same kind it left with: the server maps kind to
//! status in [`Kind::http_status`], the client maps status back in [`Kind::from_http_status`].
//!
//! Where a caller must tell one failure from another of the same kind (an offline tunnel from a
//! refused node, a missing second factor from a wrong password), the error carries a [`Code`]
//! beside its message, and callers branch on the code, never on the text (sqlx's
//! `DatabaseError::code()` beside `message()`). Codes cross every hop: the API's error body,
//! the tunnel's status line (`tunnel::wire`), the proxy's answer to a `proxy:` request.

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

/// What failed, for programs: stable across versions and hops (`snake_case` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// A leaf's or a node's tunnel is connected to no proxy that was asked.
    TunnelOffline,
    /// No registered node of the cluster matches the host asked for.
    NodeNotFound,
    /// The cluster does not exist, or the caller may not see it (the two look the same).
    ClusterNotFound,
    /// A sign-in needs a second-factor code.
    OtpRequired,
    /// A join or trust token was refused (wrong, expired, used).
    TokenRejected,
    /// A token does not grant the role asked for.
    RoleMismatch,
    /// A server's TLS certificate is not trusted here.
    UntrustedServerCert,
    /// A lock refused the request.
    Locked,
    /// A code of a newer peer that this version does not know.
    #[serde(other)]
    Unknown,
}

impl Code {
    /// The code as it travels (`tunnel_offline`).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::TunnelOffline => "tunnel_offline",
            Code::NodeNotFound => "node_not_found",
            Code::ClusterNotFound => "cluster_not_found",
            Code::OtpRequired => "otp_required",
            Code::TokenRejected => "token_rejected",
            Code::RoleMismatch => "role_mismatch",
            Code::UntrustedServerCert => "untrusted_server_cert",
            Code::Locked => "locked",
            Code::Unknown => "unknown",
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
    /// What failed, for programs (none where the kind says enough).
    pub code: Option<Code>,
}

impl Error {
    /// Builds an error of `kind`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), code: None }
    }
    /// The same error with `code`.
    pub fn with_code(mut self, code: Code) -> Self {
        self.code = Some(code);
        self
    }
    /// True when the error carries `code`.
    pub fn has(&self, code: Code) -> bool {
        self.code == Some(code)
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
        Error { message: format!("{what}: {}", self.message), ..self }
    }
}

/// An I/O error's text for people, without Rust's ` (os error N)`: `Permission denied`.
pub fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.split_once(" (os error") {
        Some((head, _)) => head.to_string(),
        None => text,
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

/// An error with its kind, as JSON (`{"kind","code","message"}`): how a refusal that is not an
/// HTTP answer travels (a tunnel's status line, a proxy's answer to a `proxy:` request).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WireError {
    /// The classification.
    pub kind: Kind,
    /// What failed, for programs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Code>,
    /// The message.
    pub message: String,
}

impl From<&Error> for WireError {
    fn from(e: &Error) -> WireError {
        WireError { kind: e.kind, code: e.code, message: e.message.clone() }
    }
}

impl From<WireError> for Error {
    fn from(w: WireError) -> Error {
        Error { kind: w.kind, message: w.message, code: w.code }
    }
}

/// The JSON error body on the wire: `{"error":{"message":"..."}}` (reference §1.2, §7.7), with
/// our `code` beside the message when there is one (Teleport's clients ignore it).
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
    /// What failed, for programs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Code>,
}

impl ErrorBody {
    /// Wraps a message.
    pub fn new(message: impl Into<String>) -> Self {
        ErrorBody { error: ErrorBodyInner { message: message.into(), code: None } }
    }

    /// The body of `e` (its message and code).
    pub fn of(e: &Error) -> Self {
        ErrorBody { error: ErrorBodyInner { message: e.message.clone(), code: e.code } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_without_the_os_error_number() {
        assert_eq!(io_text(&std::io::Error::from_raw_os_error(13)), "Permission denied");
        assert_eq!(io_text(&std::io::Error::other("plain")), "plain");
    }

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
    fn codes_travel_in_the_body_and_unknown_ones_are_read() {
        let e = Error::not_found("node \"x\" is not found").with_code(Code::NodeNotFound);
        let body = serde_json::to_string(&ErrorBody::of(&e)).unwrap_or_default();
        assert_eq!(body, r#"{"error":{"message":"node \"x\" is not found","code":"node_not_found"}}"#);
        let back: ErrorBody =
            serde_json::from_str(r#"{"error":{"message":"m","code":"from_the_future"}}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.error.code, Some(Code::Unknown));
        let old: ErrorBody = serde_json::from_str(r#"{"error":{"message":"m"}}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(old.error.code, None, "an older peer's body has no code");
        assert!(e.clone().context("dialing").has(Code::NodeNotFound), "context keeps the code");
        for c in [
            Code::TunnelOffline,
            Code::NodeNotFound,
            Code::ClusterNotFound,
            Code::OtpRequired,
            Code::TokenRejected,
            Code::RoleMismatch,
            Code::UntrustedServerCert,
            Code::Locked,
        ] {
            assert_eq!(serde_json::to_value(c).ok(), Some(serde_json::Value::String(c.as_str().into())));
        }
    }

    #[test]
    fn context_keeps_kind() {
        let e = Error::not_found("role \"x\" is not found").context("loading");
        assert_eq!(e.kind, Kind::NotFound);
        assert_eq!(e.message, "loading: role \"x\" is not found");
    }
}
