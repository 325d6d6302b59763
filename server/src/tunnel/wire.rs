//! Everything that crosses a reverse tunnel or the peer port, typed, with pure encode and decode
//! functions (fuzzed: `fuzz/fuzz_targets/tunnel_wire.rs`). Nothing else in the crate looks at
//! the bytes of these messages.
//!
//! ```text
//!  proxy ── forwarded-tcpip, address = TunnelRequest ──▶ agent (leaf proxy, tunnel node)
//!        ◀── Status line: "OK" | "ERR {kind, code, message}" ── then the bytes of the connection
//!  agent ── session + subsystem "teleport-heartbeat": Heartbeat lines both ways ──▶ proxy
//!  proxy ── peer port: PeerRequest line ──▶ peer proxy ── Status line, then the bytes
//! ```
//!
//! The formats are the ones older versions speak, so a mixed cluster keeps working for a
//! release: a [`TunnelRequest`] without an origin is its bare target (`api`, `node:db1:0`),
//! with one it is JSON; a [`Heartbeat`] is a word and, for some, JSON; an older peer's failure
//! is `ERR <message>`, read as a message without a code.

use serde::{Deserialize, Serialize};
use shared::error::{Code, Error, Result, WireError};
use shared::resource::CertAuthority;

use super::proxies::Discovery;

/// The address an agent forwards to register its tunnel.
pub const TUNNEL_ADDRESS: &str = "teleport-tunnel";
/// The subsystem carrying heartbeats.
pub const HEARTBEAT_SUBSYSTEM: &str = "teleport-heartbeat";
/// The longest channel address a tunnel end accepts (the target and its origin, as JSON).
pub const MAX_REQUEST_LEN: usize = 16 * 1024;
/// The longest heartbeat line a proxy accepts from an agent (a `ping`, or a leaf's `cas` line:
/// a host CA in the middle of a rotation, two keys and two certificates, is about 3 KiB).
pub const MAX_HEARTBEAT_LINE: usize = 16 * 1024;
/// The longest line an agent accepts on its heartbeat channel (a discovery list).
pub const MAX_DISCOVERY_LINE: usize = 256 * 1024;
/// The longest status line either end reads.
pub const MAX_STATUS_LEN: usize = 2048;
/// The longest message a status line carries, in bytes (JSON escaping at most doubles it).
const MAX_STATUS_MESSAGE: usize = 900;
/// The longest host name a node target names.
const MAX_HOST: usize = 253;

/// Who a connection through a tunnel is for, as the proxy that opened the channel knows them.
///
/// A leaf trusts this only because it arrives on the tunnel the leaf itself dialled to its
/// trusted root, whose host certificate it verified: nobody else can open channels on it (a node
/// reached directly believes it only with a proxy's signature: `super::vouch`). The leaf uses it
/// for its audit log, its per-caller limits and locks; authorization still rests on the user's
/// own certificate, checked end to end by the leaf's API or node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The Teleport user.
    pub user: String,
    /// The cluster that issued the user's certificate.
    pub cluster: String,
    /// The roles in the user's certificate.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The client's address as the proxy saw it.
    pub addr: String,
    /// When the user's certificate was issued (Unix seconds), for locks that cover only older
    /// certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<i64>,
    /// The user's X.509 certificate (DER, base64), for a protocol whose TLS the proxy ended
    /// (Kubernetes): the far cluster verifies it against the issuing cluster's user CA and
    /// decides from it, not from the fields above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
}

impl Origin {
    /// What a proxy sends with a connection whose TLS it ended: the user of cluster `cluster`
    /// with `roles`, from `addr`, and their certificate (DER), which the far side verifies.
    pub fn with_cert(user: &str, cluster: &str, roles: &[String], addr: &str, der: &[u8]) -> Origin {
        use base64::Engine as _;
        Origin {
            user: user.to_string(),
            cluster: cluster.to_string(),
            roles: roles.to_vec(),
            addr: addr.to_string(),
            issued_at: None,
            cert: Some(base64::engine::general_purpose::STANDARD.encode(der)),
        }
    }

    /// The user's certificate (DER), when the proxy sent a readable one.
    pub fn cert_der(&self) -> Option<Vec<u8>> {
        use base64::Engine as _;
        self.cert.as_deref().and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
    }

    /// [`Origin::issued_at`] as a time.
    pub fn issued_time(&self) -> Option<time::OffsetDateTime> {
        self.issued_at.map(shared::timefmt::from_unix)
    }

    /// `user@cluster`, the key of per-caller limits.
    pub fn caller(&self) -> String {
        format!("{}@{}", self.user, self.cluster)
    }
}

/// What a proxy asks of a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The far cluster's API (`tsh ls --cluster=leaf` and friends).
    Api,
    /// A tunnel node's SSH server.
    Ssh,
    /// A root's locks, for the leaf to enforce on the root's users.
    Locks,
    /// The far cluster's Kubernetes service: HTTP for the Kubernetes cluster the user's
    /// certificate (in the [`Origin`]) names.
    Kube,
    /// The far cluster's app service: HTTP (or a TCP app's bytes) for the app the user's app
    /// certificate (in the [`Origin`]) routes to.
    App,
    /// The far cluster's database service: PostgreSQL for the database the user's database
    /// certificate (in the [`Origin`]) routes to, starting with the client's `StartupMessage`.
    Db,
    /// A registered node of the far cluster: host name, UUID or address, and port (`None`: any).
    Node {
        /// Host name, UUID or address.
        host: String,
        /// Port.
        port: Option<u16>,
    },
}

impl Target {
    /// The target as it travels: `api`, `ssh`, `locks`, `node:<host>:<port>`.
    pub fn encode(&self) -> String {
        match self {
            Target::Api => "api".into(),
            Target::Ssh => "ssh".into(),
            Target::Locks => "locks".into(),
            Target::Kube => "kube".into(),
            Target::App => "app".into(),
            Target::Db => "db".into(),
            Target::Node { host, port } => {
                let host = if host.contains(':') { format!("[{host}]") } else { host.clone() };
                format!("node:{host}:{}", port.unwrap_or(0))
            }
        }
    }

    /// Reads a target (bounded; never panics on peer input).
    pub fn decode(s: &str) -> Result<Target> {
        let bad = || Error::bad_parameter(format!("unsupported tunnel target {:?}", s.chars().take(100).collect::<String>()));
        match s {
            "api" => return Ok(Target::Api),
            "ssh" => return Ok(Target::Ssh),
            "locks" => return Ok(Target::Locks),
            "kube" => return Ok(Target::Kube),
            "app" => return Ok(Target::App),
            "db" => return Ok(Target::Db),
            _ => {}
        }
        let addr = s.strip_prefix("node:").ok_or_else(bad)?;
        let (host, port) = match addr.strip_prefix('[') {
            Some(v6) => {
                let (host, rest) = v6.split_once(']').ok_or_else(bad)?;
                (host, rest.strip_prefix(':').ok_or_else(bad)?)
            }
            None => addr.rsplit_once(':').ok_or_else(bad)?,
        };
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || host.len() > MAX_HOST || host.chars().any(|c| c.is_control() || c.is_whitespace() || "@[]".contains(c)) {
            return Err(bad());
        }
        Ok(Target::Node { host: host.to_string(), port: (port != 0).then_some(port) })
    }
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.encode())
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Target, D::Error> {
        let s = String::deserialize(d)?;
        Target::decode(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// A proxy's request on one channel: a target and, for a user's connection, who it is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelRequest {
    /// What to connect to.
    pub target: Target,
    /// For whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

impl TunnelRequest {
    /// A request without an origin.
    pub fn plain(target: Target) -> TunnelRequest {
        TunnelRequest { target, origin: None }
    }

    /// The channel address: the bare target, or JSON when there is an origin.
    pub fn encode(&self) -> String {
        match &self.origin {
            None => self.target.encode(),
            Some(_) => serde_json::to_string(self).unwrap_or_else(|_| self.target.encode()),
        }
    }

    /// Reads a channel address (bounded; never panics on peer input).
    pub fn decode(addr: &str) -> Result<TunnelRequest> {
        if addr.len() > MAX_REQUEST_LEN {
            return Err(Error::bad_parameter("tunnel request too long"));
        }
        if addr.starts_with('{') {
            return serde_json::from_str(addr).map_err(|e| Error::bad_parameter(format!("malformed tunnel request: {e}")));
        }
        Target::decode(addr).map(TunnelRequest::plain)
    }
}

/// Whose tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TunnelKey {
    /// A node of this cluster (by host UUID).
    Node(String),
    /// A leaf cluster (by name).
    Cluster(String),
}

impl TunnelKey {
    /// For messages: `cluster leaf.example.com`, `node <uuid>`.
    pub fn describe(&self) -> String {
        match self {
            TunnelKey::Node(n) => format!("node {n}"),
            TunnelKey::Cluster(c) => format!("cluster {c}"),
        }
    }

    /// The error for a tunnel that is not connected.
    pub fn offline(&self) -> Error {
        Error::connection_problem(format!("{} is offline", self.describe())).with_code(Code::TunnelOffline)
    }
}

/// What one proxy asks another on the peer port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerRequest {
    /// Whose tunnel.
    pub key: TunnelKey,
    /// What to ask of it.
    pub request: TunnelRequest,
    /// The asking proxy's host UUID (for the log; the certificate is what is trusted).
    pub from: String,
}

impl PeerRequest {
    /// The request line (without its newline).
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a request line (bounded by the caller's reader).
    pub fn decode(line: &str) -> Result<PeerRequest> {
        serde_json::from_str(line).map_err(|e| Error::bad_parameter(format!("malformed peer request: {e}")))
    }
}

/// The answer at the start of a channel: it carries the connection, or why not.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// The connection follows.
    Ok,
    /// Refused, with the far end's error (its kind and code kept).
    Err(Error),
}

impl Status {
    /// The status line (without its newline; newlines in the message are dropped, and it is
    /// bounded).
    pub fn encode(&self) -> String {
        match self {
            Status::Ok => "OK".into(),
            Status::Err(e) => {
                // One line, bounded in bytes so that even escaped it fits MAX_STATUS_LEN.
                let mut message = String::new();
                for c in e.message.chars().filter(|c| !c.is_control()) {
                    if message.len() + c.len_utf8() > MAX_STATUS_MESSAGE {
                        break;
                    }
                    message.push(c);
                }
                let body = WireError { kind: e.kind, code: e.code, message };
                format!("ERR {}", serde_json::to_string(&body).unwrap_or_default())
            }
        }
    }

    /// Reads a status line (without its newline). `Err` when it is not one at all.
    pub fn decode(line: &str) -> Result<Status> {
        if line == "OK" {
            return Ok(Status::Ok);
        }
        let Some(rest) = line.strip_prefix("ERR ") else {
            return Err(Error::connection_problem("malformed tunnel answer"));
        };
        if rest.starts_with('{')
            && let Ok(w) = serde_json::from_str::<WireError>(rest)
        {
            return Ok(Status::Err(w.into()));
        }
        // An older peer: its message, nothing to classify it by.
        Ok(Status::Err(Error::connection_problem(rest.to_string())))
    }
}

/// What a connection a proxy vouches for starts with (`super::vouch`).
pub const VOUCH_PREFIX: &[u8] = b"TP-VOUCH-1 ";
/// The longest vouch line a node reads.
pub const MAX_VOUCH_LINE: usize = 8192;

/// The line a proxy sends a node before a user's SSH stream: its host certificate, a payload
/// and a signature, each base64 without padding. Checking it is `super::vouch`'s business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VouchLine {
    /// The proxy's host certificate (OpenSSH text).
    pub cert: String,
    /// What is signed (JSON).
    pub payload: Vec<u8>,
    /// The signature (SSHSIG, PEM).
    pub sig: String,
}

impl VouchLine {
    /// Whether a connection that starts with `first` may be vouched for (or speaks SSH, say).
    pub fn may_start(first: &[u8]) -> bool {
        !first.is_empty() && VOUCH_PREFIX.starts_with(&first[..first.len().min(VOUCH_PREFIX.len())])
    }

    /// The line, with its newline.
    pub fn encode(&self) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        format!(
            "{}{} {} {}\n",
            String::from_utf8_lossy(VOUCH_PREFIX),
            b64.encode(self.cert.as_bytes()),
            b64.encode(&self.payload),
            b64.encode(self.sig.as_bytes())
        )
    }

    /// Reads a line (without its newline).
    pub fn decode(line: &str) -> Result<VouchLine> {
        use base64::Engine;
        let bad = |why: &str| Error::access_denied(format!("refused a proxy's vouch: {why}"));
        if line.len() > MAX_VOUCH_LINE {
            return Err(bad("too long"));
        }
        let rest = line.as_bytes().strip_prefix(VOUCH_PREFIX).ok_or_else(|| bad("not a vouch"))?;
        let rest = std::str::from_utf8(rest).map_err(|_| bad("not text"))?;
        let mut fields = rest.split(' ');
        let (Some(cert), Some(payload), Some(sig), None) = (fields.next(), fields.next(), fields.next(), fields.next()) else {
            return Err(bad("expected three fields"));
        };
        if [cert, payload, sig].iter().any(|f| f.trim_end().is_empty()) {
            return Err(bad("a field is empty"));
        }
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        let field = |f: &str| b64.decode(f.trim_end()).map_err(|_| bad("a field is not base64"));
        Ok(VouchLine {
            cert: String::from_utf8(field(cert)?).map_err(|_| bad("the certificate is not text"))?,
            payload: field(payload)?,
            sig: String::from_utf8(field(sig)?).map_err(|_| bad("the signature is not text"))?,
        })
    }
}

/// A line on the heartbeat channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Heartbeat {
    /// Agent to proxy, every keep-alive interval: the agent's time (RFC 3339).
    Ping(String),
    /// Proxy to agent: the answer to a ping.
    Pong,
    /// Proxy to agent: every proxy of the cluster (at connect, on a change, periodically).
    Proxies(Discovery),
    /// Proxy to agent: this proxy is stopping; keep the other tunnels, do not dial it again
    /// until it is back.
    Reconnect,
    /// Both ways, at connect and after every change (Teleport pushes them with
    /// `RotateExternalCertAuthority`): from a root's proxy, its host and user CAs; from a leaf's
    /// agent, its host CA. Public keys and rotation state only.
    Cas(Vec<CertAuthority>),
    /// Proxy to agent: the keep-alive of the cluster the agent dialled (interval in
    /// milliseconds, and how many may go unanswered), which the agent follows instead of its own.
    KeepAlive {
        /// Milliseconds between pings.
        interval_ms: u64,
        /// Pings that may go unanswered before the tunnel is given up.
        count_max: u32,
    },
}

#[derive(Serialize, Deserialize)]
struct KeepAliveBody {
    interval_ms: u64,
    count_max: u32,
}

impl Heartbeat {
    /// The line (without its newline).
    pub fn encode(&self) -> String {
        let json = |v: serde_json::Result<String>| v.unwrap_or_default();
        match self {
            Heartbeat::Ping(at) => format!("ping {at}"),
            Heartbeat::Pong => "pong".into(),
            Heartbeat::Proxies(d) => format!("proxies {}", json(serde_json::to_string(d))),
            Heartbeat::Reconnect => "reconnect".into(),
            Heartbeat::Cas(cas) => format!("cas {}", json(serde_json::to_string(cas))),
            Heartbeat::KeepAlive { interval_ms, count_max } => {
                format!("keepalive {}", json(serde_json::to_string(&KeepAliveBody { interval_ms: *interval_ms, count_max: *count_max })))
            }
        }
    }

    /// Reads a line (bounded by the caller's reader). `Ok(None)` for a word this version does not
    /// know (a newer peer's), which an agent ignores.
    pub fn decode(line: &str) -> Result<Option<Heartbeat>> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let bad = |what: &str, e: serde_json::Error| Error::bad_parameter(format!("unreadable {what} on the heartbeat channel: {e}"));
        Ok(Some(match word {
            "ping" => Heartbeat::Ping(rest.to_string()),
            "pong" => Heartbeat::Pong,
            "proxies" => Heartbeat::Proxies(serde_json::from_str(rest).map_err(|e| bad("proxy list", e))?),
            "reconnect" => Heartbeat::Reconnect,
            "cas" => Heartbeat::Cas(serde_json::from_str(rest).map_err(|e| bad("certificate authorities", e))?),
            "keepalive" => {
                let k: KeepAliveBody = serde_json::from_str(rest).map_err(|e| bad("keep-alive", e))?;
                if k.interval_ms == 0 || k.count_max == 0 {
                    return Err(Error::bad_parameter("a keep-alive of zero"));
                }
                Heartbeat::KeepAlive { interval_ms: k.interval_ms, count_max: k.count_max }
            }
            _ => return Ok(None),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            user: "alice".into(),
            cluster: "root".into(),
            roles: vec!["access".into()],
            addr: "10.0.0.1:5".into(),
            issued_at: Some(1_700_000_000),
            cert: None,
        }
    }

    #[test]
    fn requests_round_trip_and_old_targets_still_parse() {
        let plain = TunnelRequest::plain(Target::Api);
        assert_eq!(plain.encode(), "api");
        assert_eq!(TunnelRequest::decode("node:db1:0").ok().map(|r| r.target), Some(Target::Node { host: "db1".into(), port: None }));
        assert_eq!(
            TunnelRequest::decode("node:[::1]:22").ok().map(|r| r.target),
            Some(Target::Node { host: "::1".into(), port: Some(22) })
        );
        let with = TunnelRequest { target: Target::Node { host: "db1".into(), port: Some(3022) }, origin: Some(origin()) };
        let text = with.encode();
        assert!(text.contains(r#""target":"node:db1:3022""#), "{text}");
        assert_eq!(TunnelRequest::decode(&text).ok(), Some(with));
        for bad in
            ["{not json", "node:", "node:db1", "node::22", "node:db 1:22", "node:db1:99999", "nod:x:1", "", "node:a@b:1", "node:a]:b:22"]
        {
            assert!(TunnelRequest::decode(bad).is_err(), "{bad:?}");
        }
        assert!(TunnelRequest::decode(&"x".repeat(MAX_REQUEST_LEN + 1)).is_err());
        for t in [Target::Api, Target::Ssh, Target::Locks] {
            assert_eq!(Target::decode(&t.encode()).ok(), Some(t));
        }
    }

    #[test]
    fn statuses_carry_kind_and_code_and_old_ones_still_read() {
        assert_eq!(Status::decode(&Status::Ok.encode()).ok(), Some(Status::Ok));
        let e = Error::not_found("node \"x\" is not found\nin cluster").with_code(Code::NodeNotFound);
        let line = Status::Err(e).encode();
        assert!(!line.contains('\n'));
        match Status::decode(&line) {
            Ok(Status::Err(back)) => {
                assert_eq!((back.kind, back.code), (shared::Kind::NotFound, Some(Code::NodeNotFound)));
                assert_eq!(back.message, "node \"x\" is not foundin cluster");
            }
            other => panic!("{other:?}"),
        }
        match Status::decode("ERR cluster leaf is offline") {
            Ok(Status::Err(old)) => assert_eq!((old.message.as_str(), old.code), ("cluster leaf is offline", None)),
            other => panic!("{other:?}"),
        }
        assert!(Status::decode("HELLO").is_err());
        let long = Status::Err(Error::internal("x".repeat(5000))).encode();
        assert!(long.len() < MAX_STATUS_LEN);
        let escaped = Status::Err(Error::internal("\"\\é".repeat(1000))).encode();
        assert!(escaped.len() < MAX_STATUS_LEN, "{}", escaped.len());
    }

    #[test]
    fn heartbeats_round_trip_and_unknown_words_are_ignored() {
        for h in [
            Heartbeat::Ping("2026-12-06T00:00:00Z".into()),
            Heartbeat::Pong,
            Heartbeat::Reconnect,
            Heartbeat::Cas(vec![]),
            Heartbeat::KeepAlive { interval_ms: 1000, count_max: 3 },
        ] {
            assert_eq!(Heartbeat::decode(&h.encode()).ok(), Some(Some(h)));
        }
        assert_eq!(Heartbeat::decode("something-new {}").ok(), Some(None));
        assert!(Heartbeat::decode("cas [not json").is_err());
        // A proxy list with a spread round-trips; one without (an older proxy) means at once.
        use crate::tunnel::proxies::{DiscoveredProxy, Discovery};
        let p = DiscoveredProxy { name: "a".into(), addr: "a:3080".into(), started: 1 };
        let list = Heartbeat::Proxies(Discovery { proxies: vec![p.clone()], ttl: 35, spread_ms: 20_000 });
        assert_eq!(Heartbeat::decode(&list.encode()).ok(), Some(Some(list)));
        let old = Heartbeat::Proxies(Discovery { proxies: vec![p], ttl: 35, spread_ms: 0 });
        assert!(!old.encode().contains("spread_ms"), "{}", old.encode());
        assert_eq!(Heartbeat::decode(r#"proxies {"proxies":[{"name":"a","addr":"a:3080","started":1}],"ttl":35}"#).ok(), Some(Some(old)));
        assert!(Heartbeat::decode(r#"keepalive {"interval_ms":0,"count_max":3}"#).is_err());
    }

    #[test]
    fn vouch_lines_round_trip_and_ssh_is_not_one() {
        let v = VouchLine {
            cert: "ssh-ed25519-cert-v01@openssh.com AAAA x".into(),
            payload: b"{}".to_vec(),
            sig: "-----BEGIN SSH SIGNATURE-----".into(),
        };
        let line = v.encode();
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        assert_eq!(VouchLine::decode(line.trim_end()).ok(), Some(v));
        assert!(VouchLine::may_start(b"TP-V") && VouchLine::may_start(b"TP-VOUCH-1 abc"));
        assert!(!VouchLine::may_start(b"SSH-2.0-OpenSSH") && !VouchLine::may_start(b""));
        for junk in ["", "TP-VOUCH-1 ", "TP-VOUCH-1 a b", "TP-VOUCH-1 !!! b c", "SSH-2.0-x", "TP-VOUCH-1 a b c d", "TP-VOUCH-1 YQ YQ "] {
            assert!(VouchLine::decode(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn peer_requests_round_trip() {
        let r = PeerRequest {
            key: TunnelKey::Cluster("leaf".into()),
            request: TunnelRequest { target: Target::Api, origin: Some(origin()) },
            from: "proxy-a".into(),
        };
        let line = r.encode();
        assert!(line.starts_with(r#"{"key":{"cluster":"leaf"}"#), "{line}");
        assert_eq!(PeerRequest::decode(&line).ok(), Some(r));
        assert!(PeerRequest::decode("{}").is_err());
    }
}
