//! The teleport daemon as a library: the `teleport` binary is a thin `main` over [`cli`], and
//! the benchmark tools reuse the same pieces.
//!
//! # Layout
//! | module | owns |
//! |---|---|
//! | `cli`, `config` | arguments, `teleport.yaml` |
//! | `process` | assembling services |
//! | `shutdown` | the shutdown signal, the ordered task set, `every` for periodic work |
//! | `storage` | the key-value trait, SQLite, PostgreSQL and memory backends, the change feed, the audit store |
//! | `follow` | the one loop that keeps process state in step with the feed |
//! | `services` | typed resource access, key layout (`keys`), `retry_cas` |
//! | `auth` | CAs, certificates, users, tokens, web sessions, trust handshake, nodes |
//! | `authz` | the authorizing facade every API call goes through |
//! | `api` | HTTPS handlers (axum) for `tctl`/`tsh` |
//! | `web` | the browser's side: pages, web sessions, browser SSO, the terminal |
//! | `sso` | OIDC, SAML and GitHub protocol code |
//! | `listener`, `tls` | the multiplexed web port |
//! | `proxy` | the proxy's room: users' SSH side, routing and dialing, the leaf's trust to roots, lock enforcement |
//! | `ssh` | russh configuration shared by proxy and node (plumbing, no policy) |
//! | `tunnel` | reverse tunnels: the typed wire, registry, server, agent, peer proxies, vouches |
//! | `node` | the SSH node: authorization, sessions (and the parties that watch or join them), file copy (an SFTP child as the login), port and agent forwarding |
//! | `audit` | the audit log (events, clipping); the store lives in `storage::audit` |
//! | `diag` | `/healthz`, `/readyz`, `/metrics` on `diag_addr` |
//! | `limits` | connection limits by phase: handshake, anonymous, authenticated |
//! | `gate` | concurrency gates in front of expensive work anonymous callers can start |
//! | `throttle` | log lines a caller can cause at will, at most one per interval |
//! | `live` | live connections and sessions, for locks to end |
//!
//! `scripts/layers.sh --up server/src` lists imports that point up this table's layers; it
//! should list none.

pub mod access;
pub mod api;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod cli;
pub mod config;
pub mod diag;
pub mod follow;
pub mod gate;
pub mod limits;
pub mod listener;
pub mod live;
pub mod node;
pub mod process;
pub mod proxy;
pub mod services;
pub mod shutdown;
pub mod ssh;
pub mod sso;
pub mod storage;
pub mod throttle;
pub mod tls;
pub mod tunnel;
pub mod web;
