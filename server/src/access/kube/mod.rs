//! Kubernetes access across trusted clusters (reference `kube-app-db.md` §2).
//!
//! ```text
//! kubectl ──TLS (SNI kube-teleport-proxy-alpn.teleport.cluster.local, the user's cert)──▶ root proxy
//!   front.rs: who (the certificate), where (its route), may they see that leaf (cluster_labels)
//!     ├─ this cluster ──────────────────────────────▶ engine.rs
//!     └─ a leaf: tunnel Target::Kube, Origin { cert } ─▶ leaf proxy (proxy/leaf.rs) ─▶ engine.rs
//! engine.rs (the cluster that owns the Kubernetes cluster): verify the certificate against
//!   the issuer's user CA, map a root's roles, kubernetes_labels / _resources / _users /
//!   _groups, Impersonate-* set here, the service's own credentials (upstream.rs) ──▶ API server
//! exec.rs: the exec stream read as it passes, for the recording
//! ```

pub mod engine;
pub mod exec;
pub mod explain;
pub mod front;
pub mod upstream;
