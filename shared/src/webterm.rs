//! The web terminal's framing (Teleport's): after a JSON text message with the bearer token,
//! every WebSocket message is a binary protobuf `Envelope { string version = 1; string type = 2;
//! string payload = 3; }` with version `"1"` and a one-letter type:
//!
//! | type | direction | payload |
//! |---|---|---|
//! | `r` | both | terminal data (UTF-8) |
//! | `w` | browser → proxy | `{"event":"resize","width":W,"height":H,"size":"W:H"}` |
//! | `s` | proxy → browser | session metadata JSON |
//! | `c` | both | the session ended; from the proxy `{"exit_status":N}` (our addition) |
//! | `e` | proxy → browser | an error message |
//!
//! Hand-written (three length-delimited fields and a varint) rather than a protobuf crate.

use crate::error::{Error, Result};

/// Raw terminal data.
pub const DATA: &str = "r";
/// A resize.
pub const RESIZE: &str = "w";
/// Session metadata.
pub const SESSION: &str = "s";
/// The end of the session.
pub const CLOSE: &str = "c";
/// An error.
pub const ERROR: &str = "e";

/// The largest envelope accepted.
pub const MAX_ENVELOPE: usize = 1 << 20;

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `"1"`.
    pub version: String,
    /// One of the types above.
    pub kind: String,
    /// Its payload.
    pub payload: String,
}

fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_field(out: &mut Vec<u8>, tag: u8, s: &str) {
    out.push(tag << 3 | 2);
    put_varint(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Encodes an envelope of `kind` carrying `payload`.
pub fn encode(kind: &str, payload: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    put_field(&mut out, 1, "1");
    put_field(&mut out, 2, kind);
    put_field(&mut out, 3, payload);
    out
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or_else(|| Error::bad_parameter("truncated envelope"))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(Error::bad_parameter("bad varint in envelope"))
}

/// Decodes an envelope (unknown fields are skipped, as protobuf does).
pub fn decode(buf: &[u8]) -> Result<Envelope> {
    if buf.len() > MAX_ENVELOPE {
        return Err(Error::bad_parameter("envelope too large"));
    }
    let mut env = Envelope { version: String::new(), kind: String::new(), payload: String::new() };
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (tag, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(buf, &mut pos)?;
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| Error::bad_parameter("bad length"))?;
                let end = pos.checked_add(len).filter(|e| *e <= buf.len()).ok_or_else(|| Error::bad_parameter("truncated envelope"))?;
                let field = &buf[pos..end];
                pos = end;
                let text = || String::from_utf8(field.to_vec()).map_err(|_| Error::bad_parameter("envelope field is not UTF-8"));
                match tag {
                    1 => env.version = text()?,
                    2 => env.kind = text()?,
                    3 => env.payload = text()?,
                    _ => {}
                }
            }
            _ => return Err(Error::bad_parameter("unsupported protobuf wire type in envelope")),
        }
    }
    if env.kind.is_empty() {
        return Err(Error::bad_parameter("envelope has no type"));
    }
    Ok(env)
}

/// Splits terminal output into text that ends on a UTF-8 boundary and the incomplete tail
/// (at most 3 bytes) to keep for the next read. Invalid bytes become U+FFFD.
pub fn utf8_chunk(carry: &mut Vec<u8>, data: &[u8]) -> String {
    carry.extend_from_slice(data);
    let mut out = String::new();
    let mut rest: &[u8] = carry;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                rest = &[];
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        out.push('\u{FFFD}');
                        rest = &bad[n..];
                    }
                    None => {
                        rest = bad;
                        break;
                    }
                }
            }
        }
    }
    let tail = rest.to_vec();
    *carry = tail;
    out
}

/// A resize request's size (`size: "W:H"`, Teleport's field; else width/height).
pub fn parse_resize(payload: &str) -> Option<(u32, u32)> {
    let v: serde_json::Value = serde_json::from_str(payload).ok()?;
    let (w, h) = match v.get("size").and_then(|s| s.as_str()).and_then(|s| s.split_once(':')) {
        Some((w, h)) => (w.parse().ok()?, h.parse().ok()?),
        None => (u32::try_from(v.get("width")?.as_u64()?).ok()?, u32::try_from(v.get("height")?.as_u64()?).ok()?),
    };
    ((1..=4095).contains(&w) && (1..=4095).contains(&h)).then_some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_match_teleports_bytes() {
        let e = encode("r", "hi");
        assert_eq!(e, vec![0x0a, 1, b'1', 0x12, 1, b'r', 0x1a, 2, b'h', b'i']);
        let d = decode(&e).unwrap();
        assert_eq!((d.version.as_str(), d.kind.as_str(), d.payload.as_str()), ("1", "r", "hi"));
        let long = "x".repeat(300);
        assert_eq!(decode(&encode("w", &long)).unwrap().payload, long);
        assert!(decode(&[0x0a, 5, b'1']).is_err(), "truncated");
        assert!(decode(&[]).is_err(), "no type");
        assert!(decode(&[0x1a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
    }

    #[test]
    fn output_is_cut_on_character_boundaries() {
        let mut carry = Vec::new();
        let euro = "€".as_bytes(); // 3 bytes
        assert_eq!(utf8_chunk(&mut carry, &[b'a', euro[0]]), "a");
        assert_eq!(carry, vec![euro[0]]);
        assert_eq!(utf8_chunk(&mut carry, &euro[1..]), "€");
        assert!(carry.is_empty());
        assert_eq!(utf8_chunk(&mut carry, &[0xff, b'b']), "\u{FFFD}b");
    }

    #[test]
    fn resizes_are_read_and_bounded() {
        assert_eq!(parse_resize(r#"{"event":"resize","width":80,"height":24,"size":"100:30"}"#), Some((100, 30)));
        assert_eq!(parse_resize(r#"{"width":80,"height":24}"#), Some((80, 24)));
        assert_eq!(parse_resize(r#"{"size":"0:30"}"#), None);
        assert_eq!(parse_resize(r#"{"size":"5000:30"}"#), None);
    }
}
