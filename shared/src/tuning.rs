//! The transport settings every SSH hop and TCP socket uses, in one place, so that the server,
//! the tunnel agent and `tsh` cannot drift apart, and so that `bench/run.sh` can switch each one
//! off in turn to measure what it buys.
//!
//! The defaults are the product. Four environment variables override them for benchmarking and
//! tests only;
//! they are unstable, undocumented for users, and a process refuses to start with a value it
//! does not understand ([`check`]):
//!
//! | variable | values | default |
//! |---|---|---|
//! | `TELEPORT_UNSTABLE_SSH_CIPHER_ORDER` | `aes-gcm`, `chacha20` | `aes-gcm` |
//! | `TELEPORT_UNSTABLE_SSH_WINDOW` | channel window in bytes, 32768 to 1073741824 | 2097152 |
//! | `TELEPORT_UNSTABLE_TCP_NODELAY` | `true`, `false` | `true` |
//! | `TELEPORT_UNSTABLE_SSH_KEEPALIVE` | seconds between a server's probes of a silent client, 1 to 3600 | 30 |

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use russh::cipher;
use russh::keys::ssh_key::Algorithm;

/// AES-GCM first: with AES-NI, ChaCha20 first moves ~0.8 × the bytes through a leaf (`bench/run.sh`).
const AES_FIRST: &[cipher::Name] = &[cipher::AES_256_GCM, cipher::AES_128_GCM, cipher::CHACHA20_POLY1305];
/// The order OpenSSH prefers, kept for comparison.
const CHACHA_FIRST: &[cipher::Name] = &[cipher::CHACHA20_POLY1305, cipher::AES_256_GCM, cipher::AES_128_GCM];

/// Channel window: 64 KiB windows halve throughput through a leaf (`bench/run.sh`).
const DEFAULT_WINDOW: u32 = 2 * 1024 * 1024;
const WINDOW_RANGE: std::ops::RangeInclusive<u32> = 32 * 1024..=1024 * 1024 * 1024;

/// SSH maximum packet size.
pub const MAX_PACKET: u32 = 32768;

const CIPHER_VAR: &str = "TELEPORT_UNSTABLE_SSH_CIPHER_ORDER";
const WINDOW_VAR: &str = "TELEPORT_UNSTABLE_SSH_WINDOW";
const NODELAY_VAR: &str = "TELEPORT_UNSTABLE_TCP_NODELAY";
const KEEPALIVE_VAR: &str = "TELEPORT_UNSTABLE_SSH_KEEPALIVE";

/// A server probes a silent SSH peer this often and drops it after 3 unanswered probes.
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(30);
const KEEPALIVE_RANGE: std::ops::RangeInclusive<u64> = 1..=3600;

/// The transport settings in force for this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// SSH ciphers, most preferred first.
    pub ciphers: &'static [cipher::Name],
    /// SSH channel window in bytes.
    pub window: u32,
    /// `TCP_NODELAY` on every socket.
    pub nodelay: bool,
    /// How often an SSH server probes a silent client (3 unanswered probes drop it).
    pub keepalive: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning { ciphers: AES_FIRST, window: DEFAULT_WINDOW, nodelay: true, keepalive: DEFAULT_KEEPALIVE }
    }
}

impl Tuning {
    /// Reads the overrides through `var`; the first value it cannot use is the error.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Tuning, String> {
        let mut t = Tuning::default();
        if let Some(v) = var(CIPHER_VAR) {
            t.ciphers = match v.as_str() {
                "aes-gcm" => AES_FIRST,
                "chacha20" => CHACHA_FIRST,
                _ => return Err(format!("{CIPHER_VAR}={v:?} is not understood: use aes-gcm or chacha20, or unset it")),
            };
        }
        if let Some(v) = var(WINDOW_VAR) {
            t.window = v.parse().ok().filter(|w| WINDOW_RANGE.contains(w)).ok_or_else(|| {
                format!(
                    "{WINDOW_VAR}={v:?} is not a window size: use a number of bytes from {} to {}, or unset it",
                    WINDOW_RANGE.start(),
                    WINDOW_RANGE.end()
                )
            })?;
        }
        if let Some(v) = var(NODELAY_VAR) {
            t.nodelay = match v.as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(format!("{NODELAY_VAR}={v:?} is not understood: use true or false, or unset it")),
            };
        }
        if let Some(v) = var(KEEPALIVE_VAR) {
            let secs = v.parse().ok().filter(|s| KEEPALIVE_RANGE.contains(s)).ok_or_else(|| {
                format!(
                    "{KEEPALIVE_VAR}={v:?} is not an interval: use a number of seconds from {} to {}, or unset it",
                    KEEPALIVE_RANGE.start(),
                    KEEPALIVE_RANGE.end()
                )
            })?;
            t.keepalive = Duration::from_secs(secs);
        }
        Ok(t)
    }

    /// The russh algorithm preferences: our cipher order, russh's defaults for the rest.
    pub fn preferred(&self) -> russh::Preferred {
        russh::Preferred { cipher: Cow::Borrowed(self.ciphers), ..russh::Preferred::DEFAULT }
    }
}

/// The SSH client configuration of every hop that dials (`tsh`, tunnel agents, proxies): it asks
/// servers for their Ed25519 host certificate and pings every `keepalive` when given.
pub fn client_config(keepalive: Option<Duration>) -> Arc<russh::client::Config> {
    let t = get();
    let mut preferred = t.preferred();
    preferred.host_key_certificates = Cow::Borrowed(&[Algorithm::Ed25519]);
    Arc::new(russh::client::Config {
        window_size: t.window,
        maximum_packet_size: MAX_PACKET,
        nodelay: t.nodelay,
        preferred,
        keepalive_interval: keepalive,
        keepalive_max: 3,
        inactivity_timeout: None,
        ..Default::default()
    })
}

fn loaded() -> &'static Result<Tuning, String> {
    static TUNING: OnceLock<Result<Tuning, String>> = OnceLock::new();
    TUNING.get_or_init(|| Tuning::from_vars(|name| std::env::var(name).ok()))
}

/// Fails with a one-line message when an override is set to a value it cannot use. Every binary
/// calls this before it opens a connection.
pub fn check() -> Result<(), String> {
    loaded().as_ref().map(|_| ()).map_err(Clone::clone)
}

/// The settings in force: the defaults with the overrides applied (the defaults alone when an
/// override is invalid, which [`check`] has already refused at start).
pub fn get() -> Tuning {
    loaded().as_ref().copied().unwrap_or_default()
}

/// Applies the `TCP_NODELAY` setting to a socket.
pub fn set_nodelay(tcp: &tokio::net::TcpStream) {
    let _ = tcp.set_nodelay(get().nodelay);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Tuning, String> {
        Tuning::from_vars(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_without_overrides() {
        let t = with(&[]).unwrap();
        assert_eq!(t, Tuning::default());
        assert_eq!(t.ciphers[0], cipher::AES_256_GCM);
        assert_eq!(t.window, 2 * 1024 * 1024);
        assert!(t.nodelay);
    }

    #[test]
    fn each_override_applies() {
        let t = with(&[(CIPHER_VAR, "chacha20"), (WINDOW_VAR, "65536"), (NODELAY_VAR, "false"), (KEEPALIVE_VAR, "2")]).unwrap();
        assert_eq!(t.keepalive, Duration::from_secs(2));
        assert_eq!(t.ciphers[0], cipher::CHACHA20_POLY1305);
        assert_eq!(t.ciphers.len(), 3);
        assert_eq!(t.window, 65536);
        assert!(!t.nodelay);
        assert_eq!(t.preferred().cipher[0], cipher::CHACHA20_POLY1305);
    }

    #[test]
    fn bad_values_name_the_variable_and_the_fix() {
        for (var, value) in [
            (CIPHER_VAR, "des"),
            (WINDOW_VAR, "big"),
            (WINDOW_VAR, "1024"),
            (WINDOW_VAR, "99999999999"),
            (NODELAY_VAR, "yes"),
            (KEEPALIVE_VAR, "0"),
            (KEEPALIVE_VAR, "soon"),
        ] {
            let e = with(&[(var, value)]).unwrap_err();
            assert!(e.starts_with(var), "{e}");
            assert!(e.contains(&format!("{value:?}")) && e.ends_with("or unset it"), "{e}");
        }
    }
}
