//! The proxy: where a caller's connection may go, for every protocol.
//!
//! ```text
//!  users' SSH (web port, "SSH-")        a root's requests, over the tunnel this leaf dialled
//!        │ ssh.rs: authenticate,              │ leaf.rs: the root may speak for its own users
//!        │ admit (locks, lease, idle)         │ only; locks, limits, audit
//!        ▼                                    ▼
//!  router.rs  Router::route_user ── the only place that turns (caller, target) into a stream:
//!        │     cluster visibility, cluster_labels, node locks
//!        ├── this cluster's API (in process)   ├── a registered node (TCP + a vouch, tunnel::vouch)
//!        └── dial.rs  Dialer: a tunnel held here, else through a peer proxy (tunnel::peer)
//!                      └── a leaf's tunnel, a tunnel node's tunnel
//!  roots.rs   a leaf's agent pools to the roots it trusts (tunnel::pool), serving leaf.rs
//!  locks.rs   ends live connections a lock matches; sends this cluster's locks to its leaves
//! ```
//! The proxy may import `tunnel/`, `auth/` and `authz`, never `api/` or `web/`. The cluster that
//! owns a resource decides access to it (the node today); the proxy decides only visibility.

pub mod dial;
pub mod leaf;
pub mod locks;
pub mod roots;
pub mod router;
pub mod ssh;
