//! Database access (reference `kube-app-db.md` §4), in two halves as apps and Kubernetes:
//! `front.rs` at the proxy (PostgreSQL's TLS negotiation, the user's database certificate, where
//! the database is) and `engine.rs` in the cluster that serves it (the `StartupMessage`'s user
//! and database checked against the mapped roles, TLS to PostgreSQL with a `db` CA client
//! certificate, the audit). See docs/databases.md.

pub mod engine;
pub mod front;
