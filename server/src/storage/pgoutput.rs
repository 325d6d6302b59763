//! A decoder for the messages of PostgreSQL's built-in `pgoutput` logical decoding plugin
//! (protocol version 1), as `pg_logical_slot_get_binary_changes` returns them: just what the
//! change feed needs (which key changed, how, at which revision, and where transactions end).
//!
//! Columns are found by name in the `Relation` message, never by position (Teleport's feed broke
//! on positional parsing, #29911). Pure and bounded: malformed input is an error, never a panic.

use std::collections::HashMap;

/// What one message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A transaction starts.
    Begin,
    /// The transaction ends: what it changed may be delivered.
    Commit,
    /// A table's columns (sent before the first change to it in a session).
    Relation,
    /// A row was inserted or updated: its key and revision.
    Upsert { key: String, revision: i64 },
    /// A row was deleted: its key and (old) revision.
    Delete { key: String, revision: i64 },
    /// Something the feed does not use (origin, type, truncate, logical message).
    Other(u8),
}

/// Decoding error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pgoutput: {}", self.0)
    }
}

/// Where the `key` and `revision` columns are in a relation.
#[derive(Debug, Clone, Copy)]
struct Columns {
    key: usize,
    revision: usize,
}

/// Remembers relations across messages of one decoding session.
#[derive(Debug, Default)]
pub struct Decoder {
    relations: HashMap<u32, Columns>,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError("message ends early".into()));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn cstr(&mut self) -> Result<&'a str, DecodeError> {
        let end = self.buf.iter().position(|b| *b == 0).ok_or_else(|| DecodeError("unterminated string".into()))?;
        let s = std::str::from_utf8(&self.buf[..end]).map_err(|_| DecodeError("string is not UTF-8".into()))?;
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }
    /// TupleData: the text value of every column (None for NULL or unchanged TOAST).
    fn tuple(&mut self) -> Result<Vec<Option<&'a [u8]>>, DecodeError> {
        let n = self.u16()? as usize;
        let mut cols = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            match self.u8()? {
                b'n' | b'u' => cols.push(None),
                b't' | b'b' => {
                    let len = self.u32()? as usize;
                    cols.push(Some(self.take(len)?));
                }
                other => return Err(DecodeError(format!("unknown column kind {other:?}"))),
            }
        }
        Ok(cols)
    }
}

impl Decoder {
    /// A decoder for a new session.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Decodes one message.
    pub fn decode(&mut self, msg: &[u8]) -> Result<Message, DecodeError> {
        let mut r = Reader { buf: msg };
        let tag = r.u8()?;
        match tag {
            b'B' => Ok(Message::Begin),
            b'C' => Ok(Message::Commit),
            b'R' => {
                let oid = r.u32()?;
                let _namespace = r.cstr()?;
                let _name = r.cstr()?;
                let _replica_identity = r.u8()?;
                let n = r.u16()? as usize;
                let (mut key, mut revision) = (None, None);
                for i in 0..n {
                    let _flags = r.u8()?;
                    let name = r.cstr()?;
                    let _type = r.u32()?;
                    let _typmod = r.u32()?;
                    match name {
                        "key" => key = Some(i),
                        "revision" => revision = Some(i),
                        _ => {}
                    }
                }
                let (Some(key), Some(revision)) = (key, revision) else {
                    return Err(DecodeError("the table has no key or revision column".into()));
                };
                self.relations.insert(oid, Columns { key, revision });
                Ok(Message::Relation)
            }
            b'I' => {
                let cols = self.columns(r.u32()?)?;
                if r.u8()? != b'N' {
                    return Err(DecodeError("insert without a new tuple".into()));
                }
                let (key, revision) = read_row(&r.tuple()?, cols)?;
                Ok(Message::Upsert { key, revision })
            }
            b'U' => {
                let cols = self.columns(r.u32()?)?;
                let mut kind = r.u8()?;
                if kind == b'K' || kind == b'O' {
                    r.tuple()?;
                    kind = r.u8()?;
                }
                if kind != b'N' {
                    return Err(DecodeError("update without a new tuple".into()));
                }
                let (key, revision) = read_row(&r.tuple()?, cols)?;
                Ok(Message::Upsert { key, revision })
            }
            b'D' => {
                let cols = self.columns(r.u32()?)?;
                let kind = r.u8()?;
                if kind != b'K' && kind != b'O' {
                    return Err(DecodeError("delete without the old row".into()));
                }
                let tuple = r.tuple()?;
                let key = text(&tuple, cols.key)?.ok_or_else(|| DecodeError("delete without a key".into()))?;
                // With REPLICA IDENTITY FULL the old row carries the revision; with only the key, 0.
                let revision = text(&tuple, cols.revision).ok().flatten().and_then(|r| r.parse().ok()).unwrap_or(0);
                Ok(Message::Delete { key, revision })
            }
            other => Ok(Message::Other(other)),
        }
    }

    fn columns(&self, oid: u32) -> Result<Columns, DecodeError> {
        self.relations.get(&oid).copied().ok_or_else(|| DecodeError(format!("change to relation {oid} before its description")))
    }
}

fn text(tuple: &[Option<&[u8]>], i: usize) -> Result<Option<String>, DecodeError> {
    match tuple.get(i) {
        None => Err(DecodeError("row has too few columns".into())),
        Some(None) => Ok(None),
        Some(Some(b)) => std::str::from_utf8(b).map(|s| Some(s.to_string())).map_err(|_| DecodeError("column is not UTF-8".into())),
    }
}

fn read_row(tuple: &[Option<&[u8]>], cols: Columns) -> Result<(String, i64), DecodeError> {
    let key = text(tuple, cols.key)?.ok_or_else(|| DecodeError("row without a key".into()))?;
    let revision =
        text(tuple, cols.revision)?.and_then(|r| r.parse().ok()).ok_or_else(|| DecodeError("row without a numeric revision".into()))?;
    Ok((key, revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation(oid: u32, cols: &[&str]) -> Vec<u8> {
        let mut m = vec![b'R'];
        m.extend(oid.to_be_bytes());
        m.extend(b"public\0kv\0");
        m.push(b'f');
        m.extend((cols.len() as u16).to_be_bytes());
        for c in cols {
            m.push(0);
            m.extend(c.as_bytes());
            m.push(0);
            m.extend(25u32.to_be_bytes());
            m.extend((-1i32).to_be_bytes());
        }
        m
    }

    fn tuple(vals: &[Option<&str>]) -> Vec<u8> {
        let mut m = (vals.len() as u16).to_be_bytes().to_vec();
        for v in vals {
            match v {
                None => m.push(b'n'),
                Some(s) => {
                    m.push(b't');
                    m.extend((s.len() as u32).to_be_bytes());
                    m.extend(s.as_bytes());
                }
            }
        }
        m
    }

    #[test]
    fn decodes_inserts_updates_and_deletes_by_column_name() {
        let mut d = Decoder::new();
        // Columns in an unusual order: found by name.
        assert_eq!(d.decode(&relation(7, &["revision", "value", "key", "expires"])), Ok(Message::Relation));
        let mut ins = vec![b'I'];
        ins.extend(7u32.to_be_bytes());
        ins.push(b'N');
        ins.extend(tuple(&[Some("42"), Some("\\x00"), Some("roles/a"), None]));
        assert_eq!(d.decode(&ins), Ok(Message::Upsert { key: "roles/a".into(), revision: 42 }));
        let mut upd = vec![b'U'];
        upd.extend(7u32.to_be_bytes());
        upd.push(b'O');
        upd.extend(tuple(&[Some("42"), Some("\\x00"), Some("roles/a"), None]));
        upd.push(b'N');
        upd.extend(tuple(&[Some("43"), Some("\\x01"), Some("roles/a"), None]));
        assert_eq!(d.decode(&upd), Ok(Message::Upsert { key: "roles/a".into(), revision: 43 }));
        let mut del = vec![b'D'];
        del.extend(7u32.to_be_bytes());
        del.push(b'O');
        del.extend(tuple(&[Some("43"), Some("\\x01"), Some("roles/a"), None]));
        assert_eq!(d.decode(&del), Ok(Message::Delete { key: "roles/a".into(), revision: 43 }));
        assert_eq!(d.decode(b"B\0\0\0\0\0\0\0\0"), Ok(Message::Begin));
        assert_eq!(d.decode(b"C\0"), Ok(Message::Commit));
    }

    #[test]
    fn malformed_messages_are_errors() {
        let mut d = Decoder::new();
        let mut ins = vec![b'I'];
        ins.extend(9u32.to_be_bytes());
        assert!(d.decode(&ins).is_err(), "unknown relation");
        assert!(d.decode(&relation(1, &["value"])).is_err(), "no key column");
        assert!(d.decode(b"").is_err());
        d.decode(&relation(1, &["key", "revision"])).ok();
        let mut short = vec![b'I'];
        short.extend(1u32.to_be_bytes());
        short.push(b'N');
        short.extend([0, 2, b't', 0, 0, 0, 99]);
        assert!(d.decode(&short).is_err(), "a length past the end");
        for n in 0..40 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 % 251) as u8).collect();
            let _ = d.decode(&junk);
        }
    }
}
