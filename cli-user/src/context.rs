//! Who the user is and how to reach their clusters: the current profile (or `-i identity`),
//! and API clients for the root (direct HTTPS, pinned to its host CA) and for leaves (through
//! the root proxy's tunnel, TLS end to end with the leaf).

use anyhow::{anyhow, bail};
use shared::certs::CLUSTER_LOCAL_NAME;
use shared::client::{ApiClient, tcp_dialer};
use shared::profile::{Credentials, Profile, ProfileStore, read_identity_file};

use crate::commands::Global;

/// A signed-in user.
#[derive(Clone)]
pub struct Session {
    /// The profile (synthesised for identity files).
    pub profile: Profile,
    /// Keys and certificates.
    pub creds: Credentials,
    /// Profile name (None for identity files).
    pub name: Option<String>,
}

fn not_logged_in() -> anyhow::Error {
    anyhow!("Not logged in. Run 'tsh login --proxy=<proxy address> --user=<user>' first")
}

/// Whether the credentials' certificates are still valid.
pub fn valid_until(creds: &Credentials) -> time::OffsetDateTime {
    shared::identity::ssh_cert_expiry(&creds.ssh_cert)
}

impl Session {
    /// Loads the session from `-i` or the current profile (or the one for `--proxy`).
    pub fn load(g: &Global) -> anyhow::Result<Session> {
        if let Some(id) = &g.identity {
            let creds = read_identity_file(id)?;
            let der = shared::certs::first_pem_der(&creds.tls_cert_pem, "CERTIFICATE")?;
            let cluster = shared::certs::parse_peer_cert(&der)?.issuer_cluster;
            let proxy = g.proxy.clone().ok_or_else(|| anyhow!("--identity needs --proxy=<proxy host:port>"))?;
            let profile = Profile {
                web_proxy_addr: shared::resource::cluster::with_default_port(&proxy, 3080),
                username: creds.ssh_cert.key_id().to_string(),
                cluster: cluster.clone(),
                site: cluster,
                insecure: g.insecure,
            };
            return Ok(Session { profile, creds, name: None });
        }
        let store = ProfileStore::from_env();
        let name = match &g.proxy {
            Some(p) => shared::client::host_of(p),
            None => store.current().ok_or_else(not_logged_in)?,
        };
        let (profile, creds) = store.load(&name).map_err(|_| not_logged_in())?;
        Ok(Session { profile, creds, name: Some(name) })
    }

    /// Fails if the certificates have expired.
    pub fn require_valid(&self) -> anyhow::Result<()> {
        if valid_until(&self.creds) <= time::OffsetDateTime::now_utc() {
            bail!("your credentials for {} have expired; run 'tsh login' again", self.profile.web_proxy_addr);
        }
        Ok(())
    }

    /// The cluster to act on: `--cluster`, else the selected one.
    pub fn target(&self, g: &Global) -> String {
        g.cluster.clone().filter(|c| !c.is_empty()).unwrap_or_else(|| self.profile.site.clone())
    }

    /// The cluster to act on, known to the profile. A selected leaf (`tsh login leaf`) that
    /// the root no longer has falls back to the root with a note, rather than failing every
    /// command (Teleport's #6605); an explicit `--cluster` is never second-guessed.
    pub async fn resolve_target(&mut self, g: &Global, err: &mut dyn std::io::Write) -> anyhow::Result<String> {
        let cluster = self.target(g);
        match self.ensure_cluster(&cluster).await {
            Ok(()) => Ok(cluster),
            Err(e) if g.cluster.is_none() && cluster != self.profile.cluster => {
                let root = self.profile.cluster.clone();
                let _ = writeln!(
                    err,
                    "NOTE: the selected cluster {cluster:?} is no longer reachable from {root:?} ({e:#}); using {root:?} (tsh login {root} to select it)"
                );
                Ok(root)
            }
            Err(e) => Err(e),
        }
    }

    /// When `error` says that the selected (not `--cluster`) leaf `cluster` is gone from the
    /// root, notes it and returns the root to use instead.
    pub fn fallback_to_root(&self, g: &Global, cluster: &str, error: &shared::Error, err: &mut dyn std::io::Write) -> Option<String> {
        if g.cluster.is_some() || cluster == self.profile.cluster || !error.has(shared::Code::ClusterNotFound) {
            return None;
        }
        let root = self.profile.cluster.clone();
        let _ = writeln!(
            err,
            "NOTE: the selected cluster {cluster:?} is no longer reachable from {root:?}; using {root:?} (tsh login {root} to select it)"
        );
        Some(root)
    }

    /// Makes sure the profile knows `cluster`'s host CA, asking the root for that one when it
    /// does not (a sign-in brings the root's only; the profile keeps each leaf's once fetched).
    pub async fn ensure_cluster(&mut self, cluster: &str) -> anyhow::Result<()> {
        if !self.creds.host_ca_keys(cluster).is_empty() {
            return Ok(());
        }
        let cas: Vec<shared::api::TrustedCa> = self.root_api()?.get(&shared::api::path::host_ca_of(cluster)).await?;
        self.save_host_cas(cas)?;
        if self.creds.host_ca_keys(cluster).is_empty() {
            bail!("cluster {cluster:?} is not found; run 'tsh clusters' to see the clusters you can reach");
        }
        Ok(())
    }

    /// Makes sure the profile knows the host CAs of `clusters`: one question for one missing,
    /// one listing of every visible leaf's for more.
    pub async fn ensure_clusters(&mut self, clusters: &[String]) -> anyhow::Result<()> {
        let missing: Vec<&String> = clusters.iter().filter(|c| self.creds.host_ca_keys(c).is_empty()).collect();
        match missing.as_slice() {
            [] => Ok(()),
            [one] => {
                let one = one.to_string();
                self.ensure_cluster(&one).await
            }
            _ => {
                let cas: Vec<shared::api::TrustedCa> = self.root_api()?.get(shared::api::path::HOST_CAS).await?;
                self.save_host_cas(cas)
            }
        }
    }

    fn save_host_cas(&mut self, cas: Vec<shared::api::TrustedCa>) -> anyhow::Result<()> {
        self.creds.merge_host_cas(cas);
        if let Some(n) = &self.name {
            ProfileStore::from_env().save(n, &self.profile, &self.creds)?;
        }
        Ok(())
    }

    /// The clusters this user may see, root first (as `tsh clusters`).
    pub async fn visible_clusters(&self) -> anyhow::Result<Vec<shared::api::ClusterInfo>> {
        Ok(self.root_api()?.get(shared::api::path::CLUSTERS).await?)
    }

    /// Asks each of `clusters` the same question in parallel, at most `per_cluster` each, in
    /// the order given: the answer, or why there is none (an offline leaf is an answer too).
    pub async fn per_cluster<T, F, Fut>(
        &mut self,
        clusters: &[String],
        per_cluster: std::time::Duration,
        ask: F,
    ) -> Vec<(String, Result<T, String>)>
    where
        T: Send + 'static,
        F: Fn(ApiClient) -> Fut,
        Fut: std::future::Future<Output = shared::Result<T>> + Send + 'static,
    {
        let _ = self.ensure_clusters(clusters).await;
        let mut set = tokio::task::JoinSet::new();
        for (i, c) in clusters.iter().enumerate() {
            let question = self.cluster_api(c).map(&ask);
            let c = c.clone();
            set.spawn(async move {
                let result = match question {
                    Ok(q) => match tokio::time::timeout(per_cluster, q).await {
                        Ok(r) => r.map_err(|e| e.message),
                        Err(_) => Err(format!("no answer within {}s", per_cluster.as_secs())),
                    },
                    Err(e) => Err(format!("{e:#}")),
                };
                (i, c, result)
            });
        }
        let mut done = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(r) = r {
                done.push(r);
            }
        }
        done.sort_by_key(|(i, _, _)| *i);
        done.into_iter().map(|(_, c, r)| (c, r)).collect()
    }

    /// The nodes of each of `clusters` matching `filter` (`k=v,...`), asked in parallel with at
    /// most `per_cluster` for each: (cluster, nodes) for those that answered, and (cluster,
    /// why) for those that did not (an offline leaf is reported, never fatal).
    pub async fn nodes_of(
        &mut self,
        clusters: &[String],
        filter: &str,
        per_cluster: std::time::Duration,
    ) -> anyhow::Result<(Vec<(String, Vec<shared::resource::Node>)>, Vec<(String, String)>)> {
        let url = if filter.is_empty() {
            shared::api::path::NODES.to_string()
        } else {
            format!("{}?labels={}", shared::api::path::NODES, shared::client::encode_segment(filter))
        };
        let answers = self
            .per_cluster(clusters, per_cluster, |api| {
                let url = url.clone();
                async move { api.get::<Vec<shared::resource::Node>>(&url).await }
            })
            .await;
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        for (c, r) in answers {
            match r {
                Ok(nodes) => ok.push((c, nodes)),
                Err(e) => failed.push((c, e)),
            }
        }
        Ok((ok, failed))
    }

    /// The root cluster's API, pinned to its host CA.
    pub fn root_api(&self) -> anyhow::Result<ApiClient> {
        let addr = &self.profile.web_proxy_addr;
        let trust = self.creds.cluster_trust(&self.profile.cluster)?;
        Ok(ApiClient::new(tcp_dialer(addr), CLUSTER_LOCAL_NAME, &trust, Some(&self.creds.client_identity()), addr)?)
    }

    /// The API of `cluster`: the root directly, a leaf through the root proxy's tunnel.
    pub fn cluster_api(&self, cluster: &str) -> anyhow::Result<ApiClient> {
        Ok(shared::sshclient::cluster_api(
            &self.profile.web_proxy_addr,
            &self.profile.cluster,
            &self.creds,
            &self.profile.username,
            cluster,
        )?)
    }
}
