//! Access to resources beyond SSH, one folder per protocol, each in two halves: a front at the
//! proxy (authenticates the caller, reaches the owning cluster through `proxy::dial`) and an
//! engine in the cluster that owns the resource (decides with the roles it maps, audits).
//! An engine never imports a front. `cluster.rs` is what every engine asks of its cluster (who a
//! certificate is, where events go), in the cluster process or in a process of its own.
//! See docs/architecture.md.

pub mod app;
pub mod cluster;
pub mod kube;
