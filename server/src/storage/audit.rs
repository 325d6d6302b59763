//! Where audit events are stored and read back: the cluster state's own table (SQLite, or
//! PostgreSQL without `audit_events_uri`), or a PostgreSQL database of their own. What an event
//! holds, and its bounds, is `crate::audit`'s business.

use std::sync::Arc;

use shared::client::BoxFuture;
use shared::error::Result;

use super::Backend;

/// Where audit events are stored and read back: the cluster state's own table (SQLite, or
/// PostgreSQL without `audit_events_uri`), or a PostgreSQL database of their own.
pub trait AuditStore: Send + Sync + 'static {
    /// Appends an event (its `uid` makes a retry harmless where the store supports it).
    fn append(&self, json: String) -> BoxFuture<'_, Result<i64>>;
    /// The newest `limit` events, oldest first.
    fn list(&self, limit: usize) -> BoxFuture<'_, Result<Vec<super::AuditRecord>>>;
    /// Appends several events (together where the store can).
    fn append_many(&self, lines: Vec<String>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            for l in lines {
                self.append(l).await?;
            }
            Ok(())
        })
    }
}

/// The state backend's audit table.
pub struct BackendAudit(pub Arc<dyn Backend>);

impl AuditStore for BackendAudit {
    fn append(&self, json: String) -> BoxFuture<'_, Result<i64>> {
        self.0.append_audit(json)
    }
    fn list(&self, limit: usize) -> BoxFuture<'_, Result<Vec<super::AuditRecord>>> {
        self.0.list_audit(limit)
    }
    fn append_many(&self, lines: Vec<String>) -> BoxFuture<'_, Result<()>> {
        self.0.append_audit_many(lines)
    }
}
