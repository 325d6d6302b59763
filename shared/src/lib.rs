//! The library every binary uses: resource types and their rules, role mapping, label
//! matching, trait templates, the access checker, certificate identity encoding, the REST
//! contract and its client, the `tsh` profile store, and output formats.
//!
//! # Layout
//! | module | holds |
//! |---|---|
//! | [`error`] | the classified error every layer returns, with stable [`Code`]s clients act on |
//! | [`resource`] | `role`, `user`, `token`, `trusted_cluster`, `remote_cluster`, `cert_authority`, `node`, connectors |
//! | [`yaml`] | reading resource files, printing YAML as `tctl` does |
//! | [`rolemap`] | `role_map` validation and mapping |
//! | [`labels`] | label selectors |
//! | [`names`] | name hygiene: no look-alikes, invisible characters or stray white space |
//! | [`template`] | `{{internal.logins}}` and friends |
//! | [`rbac`] | the access checker (node logins, cluster labels, API rules) |
//! | [`recording`] | the session recording frame codec |
//! | [`explain`] | `access explain`: asking the root and the leaf, printing the answer |
//! | [`fdio`] | reading and writing a descriptor on the event loop (a PTY, a terminal) |
//! | [`certs`] | SSH and X.509 keys and certificates |
//! | [`identity`] | what certificates say about their holder |
//! | [`subsystem`] | the `proxy:host:port@cluster` request parser and the typed refusal |
//! | [`sshclient`] | the SSH client to the proxy: over TLS, over a tunnel, or in process |
//! | [`sso`] | SSO login bodies and the loopback redirect `tsh` listens on |
//! | [`totp`] | TOTP codes (RFC 6238) |
//! | [`webterm`] | the web terminal's WebSocket frames |
//! | [`party`] | joining a running session: the join login, its variables, modes, session IDs |
//! | [`api`] | REST paths and bodies |
//! | [`client`] | the HTTPS client over any stream |
//! | [`profile`] | `tsh` profiles and identity files |
//! | [`output`] | `--format`, tables, JSON and YAML printing |
//! | [`timefmt`] | the clock and Go-style time formats |
//! | [`tuning`] | SSH ciphers, channel windows and `TCP_NODELAY`, one set for every hop |
//! | [`version`] | the version line |
//!
//! Nothing here depends on server code; the server, `tctl`, `tsh` and the tests all build on it.

pub mod api;
pub mod app;
pub mod certs;
pub mod client;
pub mod error;
pub mod explain;
pub mod fdio;
pub mod identity;
pub mod jwt;
pub mod kube;
pub mod labels;
pub mod names;
pub mod output;
pub mod party;
pub mod pg;
pub mod profile;
pub mod rbac;
pub mod recording;
pub mod resource;
pub mod rolemap;
pub mod sshclient;
pub mod sso;
pub mod subsystem;
pub mod template;
pub mod timefmt;
pub mod totp;
pub mod tuning;
pub mod version;
pub mod webterm;
pub mod yaml;

pub use error::{Code, Error, Kind, Result};
