//! `tsh` profiles and identity files.
//!
//! A profile is what `tsh login` leaves behind, under `$TELEPORT_HOME` (default `~/.tsh`):
//! ```text
//! ~/.tsh/current-profile              name of the active profile (the proxy host)
//! ~/.tsh/profiles/<proxy-host>/
//!     profile.yaml                    proxy address, user, root cluster, selected cluster
//!     id_ed25519          (0600)      SSH private key
//!     id_ed25519-cert.pub             SSH user certificate
//!     tls.key             (0600)      TLS private key
//!     tls.crt                         TLS client certificate
//!     cas.json                        host CAs of the root and every visible leaf
//!     known_hosts                     @cert-authority lines for those CAs (for OpenSSH)
//! ```
//! An identity file (`tctl auth sign --out`) holds the same keys and certificates in one file.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use russh::keys::ssh_key::{Certificate, PrivateKey};
use serde::{Deserialize, Serialize};

use crate::api::TrustedCa;
use crate::client::{ClientIdentity, ServerTrust};
use crate::error::{Error, Result};

/// `TELEPORT_HOME`: where profiles live.
pub const ENV_HOME: &str = "TELEPORT_HOME";

/// What a profile remembers besides its keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// The proxy's web address, `host:port`.
    pub web_proxy_addr: String,
    /// Teleport user name.
    pub username: String,
    /// The cluster that issued the certificates (the root).
    pub cluster: String,
    /// The cluster selected with `tsh login <cluster>` (defaults to `cluster`).
    pub site: String,
    /// Whether `--insecure` was used to log in (only affects unauthenticated calls).
    #[serde(default)]
    pub insecure: bool,
}

/// Keys and certificates.
#[derive(Clone)]
pub struct Credentials {
    /// SSH private key.
    pub ssh_key: PrivateKey,
    /// SSH user certificate.
    pub ssh_cert: Certificate,
    /// TLS key (PKCS#8 PEM).
    pub tls_key_pem: String,
    /// TLS certificate (PEM).
    pub tls_cert_pem: String,
    /// Host CAs (root and leaves).
    pub host_cas: Vec<TrustedCa>,
}

impl Credentials {
    /// The TLS client identity.
    pub fn client_identity(&self) -> ClientIdentity {
        ClientIdentity { cert_pem: self.tls_cert_pem.clone(), key_pem: self.tls_key_pem.clone() }
    }

    /// The identity of the X.509 certificate (roles, active access requests, routes).
    pub fn user_identity(&self) -> Option<crate::identity::UserIdentity> {
        let der = crate::certs::first_pem_der(&self.tls_cert_pem, "CERTIFICATE").ok()?;
        crate::certs::parse_peer_cert(&der).ok()?.user()
    }

    /// The approved access requests the certificate carries.
    pub fn active_requests(&self) -> Vec<String> {
        self.user_identity().map(|u| u.active_requests).unwrap_or_default()
    }

    /// Trust for talking to `cluster`'s API: its host CA, pinned.
    pub fn cluster_trust(&self, cluster: &str) -> Result<ServerTrust> {
        let pems: Vec<String> =
            self.host_cas.iter().filter(|c| c.cluster_name == cluster && c.ca_type == "host").flat_map(|c| c.tls_certs.clone()).collect();
        if pems.is_empty() {
            return Err(Error::not_found(format!("no host certificate authority known for cluster {cluster:?}; run 'tsh login' again")));
        }
        Ok(ServerTrust::Pinned(pems))
    }

    /// Takes `cas` in place of what was known of their clusters' CAs (the others stay).
    pub fn merge_host_cas(&mut self, cas: Vec<TrustedCa>) {
        TrustedCa::merge(&mut self.host_cas, cas);
    }

    /// SSH host CA keys of `cluster`.
    pub fn host_ca_keys(&self, cluster: &str) -> Vec<russh::keys::PublicKey> {
        self.host_cas
            .iter()
            .filter(|c| c.cluster_name == cluster && c.ca_type == "host")
            .flat_map(|c| c.ssh_public_keys.iter())
            .filter_map(|k| crate::certs::parse_authorized_key(k.as_bytes()).ok())
            .collect()
    }

    /// `known_hosts` lines (`@cert-authority <cluster>,*.<cluster> <key> type=host`).
    pub fn known_hosts(&self) -> String {
        self.known_hosts_with_proxy(None)
    }

    /// [`Self::known_hosts`], with the root's proxy (`(root, host:port)`) among the root CA's
    /// names, so that OpenSSH checks the proxy itself as a jump host (`ssh -J`) by its address
    /// (`[host]:port` off port 22).
    pub fn known_hosts_with_proxy(&self, proxy: Option<(&str, &str)>) -> String {
        let mut out = String::new();
        for ca in self.host_cas.iter().filter(|c| c.ca_type == "host") {
            let mut names = format!("{},*.{}", ca.cluster_name, ca.cluster_name);
            if let Some((root, addr)) = proxy
                && root == ca.cluster_name
            {
                let host = crate::client::host_of(addr);
                match addr.rsplit_once(':').map(|(_, p)| p) {
                    Some(port) if port != "22" && !host.is_empty() => names.push_str(&format!(",{host},[{host}]:{port}")),
                    _ if !host.is_empty() => names.push_str(&format!(",{host}")),
                    _ => {}
                }
            }
            for k in &ca.ssh_public_keys {
                out.push_str(&format!("@cert-authority {names} {} type=host\n", k.trim()));
            }
        }
        out
    }
}

/// Where profiles live.
#[derive(Debug, Clone)]
pub struct ProfileStore {
    dir: PathBuf,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::internal(format!("{what} {}: {e}", path.display()))
}

/// Writes a file atomically with `mode` (through a temporary file of its own, so that two
/// processes writing the same file never rename each other's).
pub fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.{}.tmp", std::process::id(), crate::certs::random_hex(4)));
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| io_err("cannot write", &tmp, e))?;
        f.write_all(data).map_err(|e| io_err("cannot write", &tmp, e))?;
        f.sync_all().map_err(|e| io_err("cannot write", &tmp, e))?;
    }
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(|e| io_err("cannot chmod", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("cannot write", path, e)
    })
}

/// Holds the store's lock (`<dir>/.lock`) while it lives: shared for readers, exclusive for
/// writers, so that a profile's key and certificate files are read and written as one (two `tsh`
/// runs at once on one profile otherwise mixed one's key with the other's certificate).
struct StoreLock(#[allow(dead_code)] Option<fs::File>);

impl StoreLock {
    fn take(dir: &Path, exclusive: bool) -> Result<StoreLock> {
        if exclusive {
            fs::create_dir_all(dir).map_err(|e| io_err("cannot create", dir, e))?;
        } else if !dir.is_dir() {
            // Nothing was ever written here: nothing to read consistently either.
            return Ok(StoreLock(None));
        }
        let path = dir.join(".lock");
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_err("cannot open", &path, e))?;
        let locked = if exclusive { f.lock() } else { f.lock_shared() };
        locked.map_err(|e| io_err("cannot lock", &path, e))?;
        Ok(StoreLock(Some(f)))
    }
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| io_err("cannot read", path, e))
}

impl ProfileStore {
    /// The store at `$TELEPORT_HOME` or `~/.tsh`.
    pub fn from_env() -> ProfileStore {
        let dir = std::env::var_os(ENV_HOME)
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".tsh"));
        ProfileStore { dir }
    }

    /// A store at `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> ProfileStore {
        ProfileStore { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn profile_dir(&self, name: &str) -> PathBuf {
        self.dir.join("profiles").join(name)
    }

    /// The directory of a profile (for `tsh config`).
    pub fn profile_path(&self, name: &str) -> PathBuf {
        self.profile_dir(name)
    }

    /// The active profile's name.
    pub fn current(&self) -> Option<String> {
        fs::read_to_string(self.dir.join("current-profile")).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    }

    /// All profile names.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(self.dir.join("profiles"))
            .map(|rd| rd.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Loads a profile and its credentials.
    pub fn load(&self, name: &str) -> Result<(Profile, Credentials)> {
        let _lock = StoreLock::take(&self.dir, false)?;
        let d = self.profile_dir(name);
        let profile: Profile = serde_yaml_ng::from_str(&read(&d.join("profile.yaml"))?)
            .map_err(|e| Error::bad_parameter(format!("corrupt profile {}: {e}; run 'tsh login' again", d.display())))?;
        let ssh_key = crate::certs::ssh_key_from_pem(read(&d.join("id_ed25519"))?.as_bytes())?;
        let ssh_cert = crate::certs::parse_ssh_cert(&read(&d.join("id_ed25519-cert.pub"))?)?;
        let host_cas: Vec<TrustedCa> = serde_json::from_str(&read(&d.join("cas.json"))?)
            .map_err(|e| Error::bad_parameter(format!("corrupt profile {}: {e}; run 'tsh login' again", d.display())))?;
        Ok((
            profile,
            Credentials { ssh_key, ssh_cert, tls_key_pem: read(&d.join("tls.key"))?, tls_cert_pem: read(&d.join("tls.crt"))?, host_cas },
        ))
    }

    /// Saves a profile, makes it current.
    pub fn save(&self, name: &str, profile: &Profile, creds: &Credentials) -> Result<()> {
        let _lock = StoreLock::take(&self.dir, true)?;
        let d = self.profile_dir(name);
        fs::create_dir_all(&d).map_err(|e| io_err("cannot create", &d, e))?;
        for dir in [self.dir.clone(), self.dir.join("profiles"), d.clone()] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(|e| io_err("cannot chmod", &dir, e))?;
        }
        let yaml = serde_yaml_ng::to_string(profile).map_err(|e| Error::internal(e.to_string()))?;
        write_file(&d.join("id_ed25519"), crate::certs::ssh_key_to_pem(&creds.ssh_key)?.as_bytes(), 0o600)?;
        write_file(&d.join("id_ed25519-cert.pub"), format!("{}\n", crate::certs::ssh_cert_line(&creds.ssh_cert)).as_bytes(), 0o644)?;
        write_file(&d.join("tls.key"), creds.tls_key_pem.as_bytes(), 0o600)?;
        write_file(&d.join("tls.crt"), creds.tls_cert_pem.as_bytes(), 0o644)?;
        let cas = serde_json::to_string_pretty(&creds.host_cas).map_err(|e| Error::internal(e.to_string()))?;
        write_file(&d.join("cas.json"), cas.as_bytes(), 0o644)?;
        let proxy = Some((profile.cluster.as_str(), profile.web_proxy_addr.as_str()));
        write_file(&d.join("known_hosts"), creds.known_hosts_with_proxy(proxy).as_bytes(), 0o644)?;
        write_file(&d.join("profile.yaml"), yaml.as_bytes(), 0o600)?;
        // Certificates derived from the old ones (`tsh kube credentials`) carry the old roles
        // and traits: a new sign-in starts them afresh.
        let derived = d.join("kube");
        if derived.exists() {
            fs::remove_dir_all(&derived).map_err(|e| io_err("cannot remove", &derived, e))?;
        }
        write_file(&self.dir.join("current-profile"), format!("{name}\n").as_bytes(), 0o600)
    }

    /// Updates only `profile.yaml`.
    pub fn save_profile(&self, name: &str, profile: &Profile) -> Result<()> {
        let _lock = StoreLock::take(&self.dir, true)?;
        let d = self.profile_dir(name);
        let yaml = serde_yaml_ng::to_string(profile).map_err(|e| Error::internal(e.to_string()))?;
        write_file(&d.join("profile.yaml"), yaml.as_bytes(), 0o600)
    }

    /// Removes a profile's keys and certificates.
    pub fn remove(&self, name: &str) -> Result<()> {
        let _lock = StoreLock::take(&self.dir, true)?;
        let d = self.profile_dir(name);
        if d.exists() {
            fs::remove_dir_all(&d).map_err(|e| io_err("cannot remove", &d, e))?;
        }
        if self.current().as_deref() == Some(name) {
            let _ = fs::remove_file(self.dir.join("current-profile"));
        }
        Ok(())
    }
}

/// Writes an identity file: SSH key, TLS key, SSH certificate, TLS certificate, CA certificates,
/// and `@cert-authority` lines.
pub fn write_identity_file(path: &Path, creds: &Credentials) -> Result<()> {
    let mut s = String::new();
    s.push_str(&crate::certs::ssh_key_to_pem(&creds.ssh_key)?);
    s.push_str(&creds.tls_key_pem);
    s.push_str(&crate::certs::ssh_cert_line(&creds.ssh_cert));
    s.push('\n');
    s.push_str(&creds.tls_cert_pem);
    for ca in &creds.host_cas {
        for pem in &ca.tls_certs {
            s.push_str(pem);
        }
    }
    s.push_str(&creds.known_hosts());
    write_file(path, s.as_bytes(), 0o600)
}

/// Reads an identity file written by [`write_identity_file`] (or `tctl auth sign`).
pub fn read_identity_file(path: &Path) -> Result<Credentials> {
    let text = fs::read_to_string(path).map_err(|e| Error::bad_parameter(format!("cannot read identity file {}: {e}", path.display())))?;
    let bad = |what: &str| Error::bad_parameter(format!("identity file {} has no {what}; create it with 'tctl auth sign'", path.display()));
    let ssh_key_pem = crate::certs::pem_texts(&text, "OPENSSH PRIVATE KEY").into_iter().next().ok_or_else(|| bad("SSH private key"))?;
    let ssh_key = crate::certs::ssh_key_from_pem(ssh_key_pem.as_bytes())?;
    let tls_key_pem = crate::certs::pem_texts(&text, "PRIVATE KEY").into_iter().next().ok_or_else(|| bad("TLS private key"))?;
    let cert_line = text.lines().find(|l| l.contains("-cert-v01@openssh.com ")).ok_or_else(|| bad("SSH certificate"))?;
    let ssh_cert = crate::certs::parse_ssh_cert(cert_line)?;
    let mut certs = crate::certs::pem_texts(&text, "CERTIFICATE").into_iter();
    let tls_cert_pem = certs.next().ok_or_else(|| bad("TLS certificate"))?;
    let mut host_cas: Vec<TrustedCa> = Vec::new();
    for pem in certs {
        let (cn, _) = crate::certs::cert_subject(&pem)?;
        match host_cas.iter_mut().find(|c| c.cluster_name == cn) {
            Some(ca) => ca.tls_certs.push(pem),
            None => host_cas.push(TrustedCa { cluster_name: cn, ca_type: "host".into(), ssh_public_keys: vec![], tls_certs: vec![pem] }),
        }
    }
    for line in text.lines().filter(|l| l.starts_with("@cert-authority ")) {
        let mut parts = line.split_whitespace().skip(1);
        let (Some(hosts), Some(alg), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let cluster = hosts.split(',').next().unwrap_or_default().to_string();
        let key = format!("{alg} {key}");
        match host_cas.iter_mut().find(|c| c.cluster_name == cluster) {
            Some(ca) => ca.ssh_public_keys.push(key),
            None => {
                host_cas.push(TrustedCa { cluster_name: cluster, ca_type: "host".into(), ssh_public_keys: vec![key], tls_certs: vec![] })
            }
        }
    }
    Ok(Credentials { ssh_key, ssh_cert, tls_key_pem, tls_cert_pem, host_cas })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::*;
    use russh::keys::ssh_key::certificate::CertType;
    use std::time::Duration;

    fn creds() -> Result<Credentials> {
        let ca = new_ssh_key()?;
        let key = new_ssh_key()?;
        let now = time::OffsetDateTime::now_utc();
        let cert = sign_ssh_cert(
            &ca,
            key.public_key(),
            &SshCertParams {
                cert_type: CertType::User,
                key_id: "alice".into(),
                principals: vec!["root".into()],
                extensions: vec![],
                not_before: now,
                not_after: now + Duration::from_secs(60),
            },
        )?;
        let ca_tls = new_tls_key()?;
        let ca_pem = new_ca_cert(&ca_tls, "root.example.com", "host", now, Duration::from_secs(60))?;
        let tls_key = new_tls_key()?;
        Ok(Credentials {
            ssh_key: key,
            ssh_cert: cert,
            tls_key_pem: tls_key.serialize_pem(),
            tls_cert_pem: ca_pem.clone(),
            host_cas: vec![TrustedCa {
                cluster_name: "root.example.com".into(),
                ca_type: "host".into(),
                ssh_public_keys: vec![authorized_key(ca.public_key())],
                tls_certs: vec![ca_pem],
            }],
        })
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tp-profile-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn known_hosts_name_the_root_proxy_by_its_address() {
        let mut c = creds().unwrap();
        let ca = |name: &str, key: &str| TrustedCa {
            cluster_name: name.into(),
            ca_type: "host".into(),
            ssh_public_keys: vec![key.into()],
            tls_certs: vec![],
        };
        c.host_cas = vec![ca("root", "ssh-ed25519 AAAA"), ca("leaf", "ssh-ed25519 BBBB")];
        let kh = c.known_hosts_with_proxy(Some(("root", "127.0.0.2:3080")));
        assert!(kh.contains("@cert-authority root,*.root,127.0.0.2,[127.0.0.2]:3080 ssh-ed25519 AAAA type=host"), "{kh}");
        assert!(kh.contains("@cert-authority leaf,*.leaf ssh-ed25519 BBBB type=host"), "the leaf's CA does not sign the proxy: {kh}");
        let on22 = c.known_hosts_with_proxy(Some(("root", "proxy.example.com:22")));
        assert!(on22.contains("root,*.root,proxy.example.com ssh"), "{on22}");
    }

    #[test]
    fn profile_round_trip_and_permissions() -> Result<()> {
        let dir = tmpdir("rt");
        let store = ProfileStore::at(&dir);
        let c = creds()?;
        let p = Profile {
            web_proxy_addr: "r:3080".into(),
            username: "alice".into(),
            cluster: "root.example.com".into(),
            site: "root.example.com".into(),
            insecure: false,
        };
        store.save("r", &p, &c)?;
        assert_eq!(store.current().as_deref(), Some("r"));
        let (p2, c2) = store.load("r")?;
        assert_eq!(p2, p);
        assert_eq!(c2.ssh_cert.key_id(), "alice");
        let mode = fs::metadata(dir.join("profiles/r/id_ed25519")).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        assert_eq!(mode, 0o600);
        let mode = fs::metadata(dir.join("profiles/r/tls.key")).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        assert_eq!(mode, 0o600);
        assert!(
            read(&dir.join("profiles/r/known_hosts"))?
                .starts_with("@cert-authority root.example.com,*.root.example.com,r,[r]:3080 ssh-ed25519 ")
        );
        store.remove("r")?;
        assert!(store.current().is_none());
        assert!(store.load("r").is_err());
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn identity_file_round_trip() -> Result<()> {
        let dir = tmpdir("id");
        fs::create_dir_all(&dir).map_err(|e| Error::internal(e.to_string()))?;
        let c = creds()?;
        let path = dir.join("identity");
        write_identity_file(&path, &c)?;
        let back = read_identity_file(&path)?;
        assert_eq!(back.ssh_cert.key_id(), "alice");
        assert_eq!(back.host_cas, c.host_cas);
        assert_eq!(back.tls_key_pem.trim(), c.tls_key_pem.trim());
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }
}
