//! End-to-end tests: real processes on loopback, grouped by area.
//!
//! Run `cargo build --workspace --bins` first; `cargo nextest run --workspace` (or `cargo test`)
//! then runs these against the built binaries. They need root (they create Unix users).

// Test code: failing loudly is its job.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod anonymous;
mod apps;
mod catalogue;
mod databases;
mod door;
mod durability;
mod ecosystem;
mod faults;
mod firewall;
mod forwarding;
mod foundation;
mod guide;
mod ha;
mod ha_storage;
mod ha_tunnels;
mod joining;
mod keepalive;
mod kube;
mod load;
mod many;
mod mfa;
mod recording;
mod requests;
mod rotation;
mod security;
mod sessions;
mod sso;
mod transfer;
mod troubleshoot;
mod trust;
mod webui;
