//! Access to resources beyond SSH, one folder per protocol, each in two halves: a front at the
//! proxy (authenticates the caller, reaches the owning cluster through `proxy::dial`) and an
//! engine in the cluster that owns the resource (decides with the roles it maps, audits).
//! An engine never imports a front. See docs/architecture.md.

pub mod app;
pub mod kube;
