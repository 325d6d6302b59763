//! Joining a running session, as `tsh join`, the web terminal and the node agree on it: the
//! login a joining connection uses, the variables that name the session and the mode, the modes,
//! and what a session ID looks like.

use crate::error::{Error, Result};

/// The login a party connects as: it names no Unix account and can do nothing but join.
pub const JOIN_LOGIN: &str = "-teleport-internal-join";
/// The session a party joins (environment variable).
pub const ENV_SESSION: &str = "TELEPORT_SESSION";
/// The mode a party joins in (environment variable).
pub const ENV_MODE: &str = "TELEPORT_SSH_JOIN_MODE";

/// How a party takes part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Sees the output; its keystrokes are never written.
    Observer,
    /// Sees the output and types.
    Peer,
}

impl Mode {
    /// Parses a mode as `tsh join --mode` names it.
    pub fn parse(s: &str) -> std::result::Result<Mode, String> {
        match s {
            "observer" => Ok(Mode::Observer),
            "peer" => Ok(Mode::Peer),
            "moderator" => Err("moderated sessions are not supported here; join as observer or peer".into()),
            other => Err(format!("unknown participant mode {other:?}; use observer or peer")),
        }
    }

    /// The mode's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Observer => "observer",
            Mode::Peer => "peer",
        }
    }
}

/// Checks that `sid` is a session ID (a GUID, as Teleport's are).
pub fn check_session_id(sid: &str) -> Result<()> {
    uuid::Uuid::parse_str(sid).map(|_| ()).map_err(|_| Error::bad_parameter(format!("'{sid}' is not a valid session ID (must be GUID)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_named_as_tsh_names_them() {
        assert_eq!(Mode::parse("observer"), Ok(Mode::Observer));
        assert_eq!(Mode::parse("peer"), Ok(Mode::Peer));
        assert!(Mode::parse("moderator").unwrap_err().contains("not supported"));
        assert!(Mode::parse("boss").unwrap_err().contains("use observer or peer"));
    }

    #[test]
    fn session_ids_are_guids() {
        assert!(check_session_id("0b9b5e3c-6c1e-4d0e-9a55-2f1f6c1f2d4e").is_ok());
        assert!(check_session_id("0b9b5e3c-6c1e-4d0e-9a55-2f1f6c1f2d4").is_err());
        assert!(check_session_id("../../etc").unwrap_err().message.contains("must be GUID"));
    }
}
