//! The PostgreSQL wire messages a database proxy reads from clients and writes to them
//! (protocol 3.0, PostgreSQL's "Frontend/Backend Protocol" chapter): pure functions over bytes,
//! bounded, never panicking on what a client sends (fuzzed: `fuzz/fuzz_targets/pg.rs`).
//! `postgres-protocol` (already in the tree through `tokio-postgres`) writes frontend messages
//! and reads backend ones; a proxy needs the other direction, which is this module.
//!
//! ```text
//! startup:  Int32 len | Int32 code (80877103 SSLRequest, 80877104 GSSENCRequest,
//!           80877102 CancelRequest, 196608 protocol 3.0) | params "k\0v\0...\0"
//! messages: Byte1 tag | Int32 len (itself included) | body
//! ```

use crate::error::{Error, Result};

/// The ALPN protocol of a PostgreSQL client on the proxy's web port (Teleport's TLS routing).
pub const ALPN: &str = "teleport-postgres";
/// `SSLRequest` as a client sends it.
pub const SSL_REQUEST_BYTES: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// PostgreSQL's own bound on a startup packet (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP: usize = 10_000;
/// The largest message this proxy reads from a client (a query or a bind of this size is a
/// mistake or an attack; PostgreSQL's own limit is 1 GiB).
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// `SSLRequest`'s code.
pub const SSL_REQUEST: u32 = 80_877_103;
/// `GSSENCRequest`'s code.
pub const GSSENC_REQUEST: u32 = 80_877_104;
/// `CancelRequest`'s code.
pub const CANCEL_REQUEST: u32 = 80_877_102;
/// Protocol 3.0.
pub const PROTOCOL_3: u32 = 196_608;

/// The first packet of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Startup {
    /// The client asks for TLS (answer `S` and run TLS, or `N`).
    Ssl,
    /// The client asks for GSSAPI encryption (answer `N`).
    GssEnc,
    /// A cancel request for a running query.
    Cancel {
        /// The backend's process id.
        pid: u32,
        /// Its secret key.
        key: u32,
    },
    /// `StartupMessage` with its parameters in order (`user`, `database`, `application_name`, ...).
    Message {
        /// The protocol version (3.0 is 196608).
        version: u32,
        /// The parameters.
        params: Vec<(String, String)>,
    },
}

impl Startup {
    /// A parameter of a `StartupMessage`.
    pub fn param(&self, name: &str) -> Option<&str> {
        match self {
            Startup::Message { params, .. } => params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()),
            _ => None,
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads the startup packet at the front of `buf`: `Ok(None)` until it is whole, then the packet
/// and its length. A packet longer than [`MAX_STARTUP`], shorter than its header, of an unknown
/// protocol or with malformed parameters is an error (the connection ends).
pub fn read_startup(buf: &[u8]) -> Result<Option<(Startup, usize)>> {
    let Some(len) = u32_at(buf, 0) else { return Ok(None) };
    let len = len as usize;
    if !(8..=MAX_STARTUP).contains(&len) {
        return Err(Error::bad_parameter(format!("invalid startup packet length {len}")));
    }
    if buf.len() < len {
        return Ok(None);
    }
    let code = u32_at(buf, 4).unwrap_or_default();
    let body = &buf[8..len];
    let packet = match code {
        SSL_REQUEST if len == 8 => Startup::Ssl,
        GSSENC_REQUEST if len == 8 => Startup::GssEnc,
        CANCEL_REQUEST if len == 16 => {
            Startup::Cancel { pid: u32_at(body, 0).unwrap_or_default(), key: u32_at(body, 4).unwrap_or_default() }
        }
        v if v >> 16 == 3 => Startup::Message { version: v, params: read_params(body)? },
        v => return Err(Error::bad_parameter(format!("unsupported frontend protocol {}.{}", v >> 16, v & 0xffff))),
    };
    Ok(Some((packet, len)))
}

/// Reads one startup packet from `r`: its length (checked before anything more is read), the
/// rest, and what it is, with its bytes as sent (for the next hop).
pub async fn read_startup_from<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> Result<(Startup, Vec<u8>)> {
    use tokio::io::AsyncReadExt as _;
    let io = |e: std::io::Error| Error::connection_problem(format!("reading the startup packet: {e}"));
    let mut buf = vec![0u8; 4];
    r.read_exact(&mut buf).await.map_err(io)?;
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if !(8..=MAX_STARTUP).contains(&len) {
        return Err(Error::bad_parameter(format!("invalid startup packet length {len}")));
    }
    buf.resize(len, 0);
    r.read_exact(&mut buf[4..]).await.map_err(io)?;
    match read_startup(&buf)? {
        Some((s, _)) => Ok((s, buf)),
        None => Err(Error::bad_parameter("incomplete startup packet")),
    }
}

/// `k\0v\0...\0`: pairs of strings ended by an empty one.
fn read_params(body: &[u8]) -> Result<Vec<(String, String)>> {
    let bad = || Error::bad_parameter("invalid startup packet layout: expected terminator as last byte");
    let Some((&0, rest)) = body.split_last() else { return Err(bad()) };
    let mut parts = rest.split(|b| *b == 0);
    let mut out = Vec::new();
    while let Some(k) = parts.next() {
        if k.is_empty() {
            // The list's end: nothing may follow it.
            if parts.next().is_some() {
                return Err(bad());
            }
            break;
        }
        let v = parts.next().ok_or_else(bad)?;
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| Error::bad_parameter("a startup parameter is not UTF-8"));
        out.push((text(k)?, text(v)?));
    }
    Ok(out)
}

/// A `StartupMessage` with these parameters (what a proxy sends the next hop).
pub fn encode_startup(params: &[(String, String)]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&PROTOCOL_3.to_be_bytes());
    for (k, v) in params {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// One message at the front of `buf` after the startup: `Ok(None)` until it is whole, then its
/// tag, its body and the bytes it took. Longer than [`MAX_MESSAGE`] is an error.
pub fn read_message(buf: &[u8]) -> Result<Option<(u8, &[u8], usize)>> {
    let (Some(&tag), Some(len)) = (buf.first(), u32_at(buf, 1)) else { return Ok(None) };
    let len = len as usize;
    if len < 4 {
        return Err(Error::bad_parameter(format!("invalid message length {len}")));
    }
    if len > MAX_MESSAGE {
        return Err(Error::bad_parameter(format!("message of {len} bytes is larger than {MAX_MESSAGE}")));
    }
    let total = len + 1;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some((tag, &buf[5..total], total)))
}

/// What a client asked, as the audit records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frontend {
    /// `Q`: a simple query.
    Query(String),
    /// `P`: a statement prepared under a name.
    Parse {
        /// The statement's name (empty: unnamed).
        name: String,
        /// Its SQL.
        query: String,
    },
    /// `B`: a portal bound to a statement with parameters (text ones shown, binary ones as
    /// `<binary>`, NULL as `NULL`).
    Bind {
        /// The portal.
        portal: String,
        /// The statement.
        statement: String,
        /// The parameters.
        params: Vec<String>,
    },
    /// `E`: a portal run.
    Execute {
        /// The portal.
        portal: String,
    },
    /// `X`: the client leaves.
    Terminate,
    /// Anything else (`S`ync, `D`escribe, `C`lose, `H`, `F`unction call, `d`/`c`/`f` copy data).
    Other(u8),
}

/// A C string at the front of `b` and the rest.
fn cstr(b: &[u8]) -> Result<(String, &[u8])> {
    let i = b.iter().position(|x| *x == 0).ok_or_else(|| Error::bad_parameter("unterminated string in a message"))?;
    Ok((String::from_utf8_lossy(&b[..i]).into_owned(), &b[i + 1..]))
}

fn i16_at(b: &[u8], at: usize) -> Result<i16> {
    b.get(at..at + 2).map(|s| i16::from_be_bytes([s[0], s[1]])).ok_or_else(|| Error::bad_parameter("truncated message"))
}

/// Reads a frontend message's body (from [`read_message`]) for the audit.
pub fn parse_frontend(tag: u8, body: &[u8]) -> Result<Frontend> {
    Ok(match tag {
        b'Q' => Frontend::Query(cstr(body)?.0),
        b'P' => {
            let (name, rest) = cstr(body)?;
            let (query, _) = cstr(rest)?;
            Frontend::Parse { name, query }
        }
        b'B' => {
            let (portal, rest) = cstr(body)?;
            let (statement, rest) = cstr(rest)?;
            let nformats = i16_at(rest, 0)?.max(0) as usize;
            let mut formats = Vec::with_capacity(nformats.min(1024));
            for i in 0..nformats {
                formats.push(i16_at(rest, 2 + 2 * i)?);
            }
            let mut at = 2 + 2 * nformats;
            let nparams = i16_at(rest, at)?.max(0) as usize;
            at += 2;
            let mut params = Vec::with_capacity(nparams.min(1024));
            for i in 0..nparams {
                let len = rest
                    .get(at..at + 4)
                    .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
                    .ok_or_else(|| Error::bad_parameter("truncated bind"))?;
                at += 4;
                if len < 0 {
                    params.push("NULL".into());
                    continue;
                }
                let v = rest.get(at..at + len as usize).ok_or_else(|| Error::bad_parameter("truncated bind parameter"))?;
                at += len as usize;
                let binary = match formats.len() {
                    0 => false,
                    1 => formats[0] == 1,
                    _ => formats.get(i).copied().unwrap_or(0) == 1,
                };
                params.push(if binary { "<binary>".into() } else { String::from_utf8_lossy(v).into_owned() });
            }
            Frontend::Bind { portal, statement, params }
        }
        b'E' => Frontend::Execute { portal: cstr(body)?.0 },
        b'X' => Frontend::Terminate,
        other => Frontend::Other(other),
    })
}

/// The messages a client sends after the startup, read from the bytes in whatever pieces they
/// arrive while the bytes themselves go on untouched: the bodies the audit reads (`Q`, `P`,
/// `B`, `E`) are kept until whole, every other body is counted past without being stored (a
/// `COPY` of gigabytes costs nothing here).
#[derive(Debug, Default)]
pub struct Scanner {
    /// The header read so far (tag and length).
    head: Vec<u8>,
    /// The current message's tag.
    tag: u8,
    /// Its body bytes still to come.
    left: usize,
    /// Its body, when the audit reads it.
    body: Option<Vec<u8>>,
}

/// Whether the audit reads messages with this tag.
fn audited(tag: u8) -> bool {
    matches!(tag, b'Q' | b'P' | b'B' | b'E' | b'X')
}

impl Scanner {
    /// A scanner at a message boundary.
    pub fn new() -> Scanner {
        Scanner::default()
    }

    /// Reads `bytes`, calling `seen` with each whole audited message. A length below 4 or above
    /// [`MAX_MESSAGE`] is an error: the connection ends.
    pub fn feed(&mut self, mut bytes: &[u8], seen: &mut dyn FnMut(Frontend)) -> Result<()> {
        while !bytes.is_empty() {
            if self.head.len() < 5 {
                let take = (5 - self.head.len()).min(bytes.len());
                self.head.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if self.head.len() < 5 {
                    return Ok(());
                }
                let len = u32_at(&self.head, 1).unwrap_or_default() as usize;
                if len < 4 {
                    return Err(Error::bad_parameter(format!("invalid message length {len}")));
                }
                if len > MAX_MESSAGE {
                    return Err(Error::bad_parameter(format!("message of {len} bytes is larger than {MAX_MESSAGE}")));
                }
                self.tag = self.head[0];
                self.left = len - 4;
                self.body = audited(self.tag).then(|| Vec::with_capacity(self.left.min(64 * 1024)));
            }
            let take = self.left.min(bytes.len());
            if let Some(b) = self.body.as_mut() {
                b.extend_from_slice(&bytes[..take]);
            }
            self.left -= take;
            bytes = &bytes[take..];
            if self.left == 0 {
                if let Some(body) = self.body.take() {
                    // A body the audit cannot read still goes to the server, which judges it.
                    if let Ok(f) = parse_frontend(self.tag, &body) {
                        seen(f);
                    }
                }
                self.head.clear();
            }
        }
        Ok(())
    }
}

/// An `ErrorResponse` (`E`) with severity `FATAL` or `ERROR`, SQLSTATE `code` and `message`: what
/// `psql` prints as `FATAL:  <message>`.
pub fn error_response(severity: &str, code: &str, message: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [(b'S', severity), (b'V', severity), (b'C', code), (b'M', message)] {
        body.push(field);
        body.extend(value.bytes().filter(|b| *b != 0));
        body.push(0);
    }
    body.push(0);
    let mut out = vec![b'E'];
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_packets_are_read_whole_and_bounded() {
        let ssl = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        assert_eq!(read_startup(&ssl).unwrap(), Some((Startup::Ssl, 8)));
        assert_eq!(read_startup(&ssl[..5]).unwrap(), None, "not whole yet");
        let gss = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];
        assert_eq!(read_startup(&gss).unwrap().unwrap().0, Startup::GssEnc);
        let params = vec![("user".to_string(), "alice".to_string()), ("database".to_string(), "dev".to_string())];
        let msg = encode_startup(&params);
        let (s, n) = read_startup(&msg).unwrap().unwrap();
        assert_eq!(n, msg.len());
        assert_eq!((s.param("user"), s.param("database"), s.param("options")), (Some("alice"), Some("dev"), None));
        assert!(read_startup(&[0, 0, 0, 4, 0, 0, 0, 0]).is_err(), "shorter than its header");
        assert!(read_startup(&[0, 0, 0x40, 0, 0, 3, 0, 0]).is_err(), "longer than PostgreSQL allows");
        assert!(read_startup(&[0, 0, 0, 9, 0, 2, 0, 0, 0]).is_err(), "protocol 2");
        let mut bad = encode_startup(&params);
        let last = bad.len() - 1;
        bad[last] = b'x';
        assert!(read_startup(&bad).is_err(), "no terminator");
        assert_eq!(read_startup(&encode_startup(&[])).unwrap().unwrap().0, Startup::Message { version: PROTOCOL_3, params: vec![] });
    }

    #[test]
    fn messages_are_framed_and_what_the_audit_reads_is_parsed() {
        let mut q = vec![b'Q'];
        q.extend_from_slice(&14u32.to_be_bytes());
        q.extend_from_slice(b"SELECT 1;\0");
        let (tag, body, n) = read_message(&q).unwrap().unwrap();
        assert_eq!((tag, n), (b'Q', q.len()));
        assert_eq!(parse_frontend(tag, body).unwrap(), Frontend::Query("SELECT 1;".into()));
        assert_eq!(read_message(&q[..4]).unwrap(), None);
        let mut huge = vec![b'Q'];
        huge.extend_from_slice(&(MAX_MESSAGE as u32 + 1).to_be_bytes());
        assert!(read_message(&huge).is_err());
        // Bind: portal "", statement "s1", one text format, two params: 'a' and NULL.
        let mut b = Vec::new();
        b.extend_from_slice(b"\0s1\0");
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&2i16.to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        b.push(b'a');
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
        assert_eq!(
            parse_frontend(b'B', &b).unwrap(),
            Frontend::Bind { portal: String::new(), statement: "s1".into(), params: vec!["a".into(), "NULL".into()] }
        );
        assert!(parse_frontend(b'B', &b[..8]).is_err(), "truncated");
        assert_eq!(parse_frontend(b'P', b"s1\0SELECT $1\0\0\0").unwrap(), Frontend::Parse { name: "s1".into(), query: "SELECT $1".into() });
    }

    #[test]
    fn the_scanner_reads_messages_in_any_pieces_and_stores_only_what_the_audit_reads() {
        let msg = |tag: u8, body: &[u8]| {
            let mut m = vec![tag];
            m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
            m.extend_from_slice(body);
            m
        };
        let mut stream = msg(b'Q', b"SELECT 1\0");
        stream.extend(msg(b'd', &[7u8; 100_000]));
        stream.extend(msg(b'P', b"s1\0SELECT $1\0\0\0"));
        stream.extend(msg(b'S', b""));
        stream.extend(msg(b'X', b""));
        for piece in [1, 3, 5, 7, 4096, stream.len()] {
            let mut sc = Scanner::new();
            let mut seen = Vec::new();
            for chunk in stream.chunks(piece) {
                sc.feed(chunk, &mut |f| seen.push(f)).unwrap();
                assert!(sc.body.as_ref().is_none_or(|b| b.len() < 100), "a copy's data is never stored");
            }
            assert_eq!(
                seen,
                vec![
                    Frontend::Query("SELECT 1".into()),
                    Frontend::Parse { name: "s1".into(), query: "SELECT $1".into() },
                    Frontend::Terminate
                ],
                "pieces of {piece}"
            );
        }
        let mut bad = Scanner::new();
        assert!(bad.feed(&[b'Q', 0, 0, 0, 3], &mut |_| {}).is_err(), "shorter than its length field");
        let mut big = Scanner::new();
        assert!(big.feed(&[b'Q', 0x7f, 0, 0, 0], &mut |_| {}).is_err(), "beyond MAX_MESSAGE");
    }

    #[test]
    fn error_responses_are_what_psql_reads() {
        let e = error_response("FATAL", "28000", "access to db denied\0x");
        assert_eq!(e[0], b'E');
        let len = u32::from_be_bytes([e[1], e[2], e[3], e[4]]) as usize;
        assert_eq!(len + 1, e.len());
        let text = String::from_utf8_lossy(&e[5..]);
        assert!(text.contains("SFATAL") && text.contains("C28000") && text.contains("Maccess to db deniedx"), "{text}");
    }
}
