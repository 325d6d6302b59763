//! The teleport daemon as a library: the `teleport` binary is a thin `main` over [`cli`], and
//! the benchmark tools reuse the same pieces.
//!
//! # Layout
//! | module | owns |
//! |---|---|
//! | `cli`, `config` | arguments, `teleport.yaml` |
//! | `process` | assembling services |
//! | `shutdown` | the shutdown signal and the ordered task set |
//! | `storage` | the key-value trait, SQLite, PostgreSQL and memory backends, the change feed |
//! | `follow` | the one loop that keeps process state in step with the feed |
//! | `services` | typed resource access and key layout |
//! | `auth` | CAs, certificates, users, tokens, trust handshake, nodes |
//! | `authz` | the authorizing facade every API call goes through |
//! | `api` | HTTPS handlers (axum) |
//! | `listener`, `tls` | the multiplexed web port |
//! | `ssh` | russh configuration, the proxy's SSH side, routing |
//! | `tunnel` | reverse tunnels: registry, agent, leaf-side manager |
//! | `node` | the SSH node: authorization and sessions |
//! | `audit` | the audit log |
//! | `diag` | `/healthz`, `/readyz`, `/metrics` on `diag_addr` |
//! | `limits` | connection limits before and after authentication |
//! | `gate` | concurrency gates in front of expensive work anonymous callers can start |
//! | `throttle` | log lines a caller can cause at will, at most one per interval |
//! | `live` | live connections and sessions, for locks to end |

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
pub mod proxies;
pub mod services;
pub mod shutdown;
pub mod ssh;
pub mod sso;
pub mod storage;
pub mod throttle;
pub mod tls;
pub mod tunnel;
pub mod web;
