//! What a batch of operations does, decided once for every backend: [`plan`] takes the live rows
//! a batch touches and returns the [`Change`]s to carry out. SQLite, memory and PostgreSQL only
//! execute them (PostgreSQL inside one serializable transaction over the rows it read), so the
//! semantics of every operation are written exactly once.

use shared::error::Result;

use super::{Event, EventKind, Item, Op};

/// A change a batch makes, decided by [`plan`] and carried out by a backend.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// Write this item.
    Upsert(Item),
    /// Remove this key.
    Remove(String),
}

/// Decides what a batch does, given the live items it touches (`current`). Shared by every
/// backend so that the semantics of each operation are written once. Later operations in a
/// batch see the effects of earlier ones.
pub(crate) fn plan(ops: Vec<Op>, revision: i64, mut current: impl FnMut(&str) -> Result<Option<Item>>) -> Result<Vec<Change>> {
    use shared::error::Error;
    use std::collections::HashMap;
    let mut overlay: HashMap<String, Option<Item>> = HashMap::new();
    let mut changes = Vec::new();
    for op in ops {
        let key = op.key().to_string();
        if key.is_empty() || key.len() > 1024 {
            return Err(Error::bad_parameter("storage key must be 1-1024 bytes"));
        }
        let existing = match overlay.get(&key) {
            Some(v) => v.clone(),
            None => current(&key)?,
        };
        let upsert = |value: Vec<u8>, expires: Option<i64>| Item { key: key.clone(), value, expires, revision };
        let change = match op {
            Op::Put { value, expires, .. } => Some(Change::Upsert(upsert(value, expires))),
            Op::Create { value, expires, .. } => {
                if existing.is_some() {
                    return Err(Error::already_exists(format!("key {key:?} already exists")));
                }
                Some(Change::Upsert(upsert(value, expires)))
            }
            Op::Update { value, expires, .. } => {
                if existing.is_none() {
                    return Err(Error::not_found(format!("key {key:?} is not found")));
                }
                Some(Change::Upsert(upsert(value, expires)))
            }
            Op::CompareAndSwap { value, expires, expected, .. } => match &existing {
                None => return Err(Error::not_found(format!("key {key:?} is not found"))),
                Some(i) if i.revision != expected => {
                    return Err(Error::compare_failed(format!("key {key:?} was changed by someone else")));
                }
                Some(_) => Some(Change::Upsert(upsert(value, expires))),
            },
            Op::Delete { .. } => {
                if existing.is_none() {
                    return Err(Error::not_found(format!("key {key:?} is not found")));
                }
                Some(Change::Remove(key.clone()))
            }
            Op::DeleteIfExists { .. } => existing.as_ref().map(|_| Change::Remove(key.clone())),
            Op::Exists { .. } => {
                if existing.is_none() {
                    return Err(Error::not_found(format!("key {key:?} is not found")));
                }
                None
            }
        };
        if let Some(c) = change {
            match &c {
                Change::Upsert(item) => overlay.insert(key.clone(), Some(item.clone())),
                Change::Remove(_) => overlay.insert(key.clone(), None),
            };
            changes.push(c);
        }
    }
    Ok(changes)
}

/// Events for a set of changes committed at `revision`.
pub(crate) fn events_for(changes: &[Change], revision: i64) -> Vec<Event> {
    changes
        .iter()
        .map(|c| match c {
            Change::Upsert(i) => Event { kind: EventKind::Put, key: i.key.clone(), revision },
            Change::Remove(k) => Event { kind: EventKind::Delete, key: k.clone(), revision },
        })
        .collect()
}
