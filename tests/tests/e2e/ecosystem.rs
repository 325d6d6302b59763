//! Issue 8: at home with stock OpenSSH, shells and scripts.

use std::path::Path;
use std::time::Duration;

use e2e::{Cluster, ClusterOpts, Tsh, bin, ensure_unix_user, run, wait_for};

const PW: &str = "ecosystem-pass-1";

/// A child process killed when the test ends, pass or fail.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ssh(args: &[&str]) -> e2e::Out {
    run(Path::new("ssh"), args, &[], None, Duration::from_secs(60))
}

#[test]
fn stock_ssh_reaches_root_and_leaf_nodes_through_tsh_config() {
    ensure_unix_user("visitor");
    let root = Cluster::start(ClusterOpts::new("root-ossh.example.com"));
    let leaf = Cluster::start({
        let mut o = ClusterOpts::new("leaf-ossh.example.com");
        o.env = vec![("SSL_CERT_FILE".into(), root.web_ca().display().to_string())];
        o
    });
    leaf.create(
        "visitor.yaml",
        "kind: role\nversion: v5\nmetadata: {name: visitor}\nspec:\n  allow:\n    logins: [visitor]\n    node_labels: {'*': '*'}\n",
    )
    .ok("role");
    root.add_user("myuser", "access", "visitor", PW);
    let token = root.trusted_cluster_token("5m");
    leaf.create(
        "tc.yaml",
        &format!(
            "kind: trusted_cluster\nversion: v2\nmetadata: {{name: {r}}}\nspec:\n  enabled: true\n  token: {token}\n  web_proxy_addr: {w}\n  tunnel_addr: {w}\n  role_map: [{{remote: access, local: [visitor]}}]\n",
            r = root.opts.name,
            w = root.web
        ),
    )
    .ok("trust");
    root.wait_remote_status(&leaf.opts.name, "online", Duration::from_secs(20));
    let mut tsh = Tsh::new("ossh");
    tsh.login(&root, "myuser", PW).ok("login");
    let cfg = tsh.home.path().join("ssh_config");
    let text = tsh.run(&["config"]).ok("tsh config").to_string();
    assert!(text.contains(&format!("Host *.{} {}", leaf.opts.name, root.ip)), "{text}");
    assert!(text.contains("ProxyCommand"), "{text}");
    std::fs::write(&cfg, &text).unwrap();
    let cfg_s = cfg.display().to_string();
    for (node, cluster) in [(root.node_name(), &root.opts.name), (leaf.node_name(), &leaf.opts.name)] {
        let out = ssh(&["-F", &cfg_s, "-o", "BatchMode=yes", &format!("visitor@{node}.{cluster}"), "id -un; exit 3"]);
        assert_eq!(out.code, 3, "stock ssh to {node}.{cluster}: {out:?}");
        assert_eq!(out.stdout, "visitor\n");
    }
}

#[test]
fn stock_sshd_trusts_our_users_and_stock_ssh_trusts_our_hosts() {
    ensure_unix_user("visitor");
    let c = Cluster::start(ClusterOpts::new("ossh2.example.com"));
    c.add_user("myuser", "access", "visitor", PW);
    let mut tsh = Tsh::new("ossh2");
    tsh.login(&c, "myuser", PW).ok("login");
    let prof = tsh.home.path().join("profiles").join(&c.ip);
    let cert = prof.join("id_ed25519-cert.pub");

    // ssh-keygen reads our certificates.
    let l = run(Path::new("ssh-keygen"), &["-L", "-f", cert.to_str().unwrap()], &[], None, Duration::from_secs(10));
    let l = l.ok("ssh-keygen -L").to_string();
    assert!(
        l.contains("user certificate") && l.contains("Key ID: \"myuser\"") && l.contains("visitor") && l.contains("teleport-roles"),
        "{l}"
    );

    // A stock sshd with our user CA as TrustedUserCAKeys.
    let dir = c.dir.path();
    let ca = c.tctl(&["auth", "export", "--type=user"]).ok("export user CA").to_string();
    assert!(ca.starts_with("ssh-ed25519 "), "{ca}");
    std::fs::write(dir.join("user_ca.pub"), &ca).unwrap();
    run(
        Path::new("ssh-keygen"),
        &["-q", "-t", "ed25519", "-N", "", "-f", dir.join("sshd_host").to_str().unwrap()],
        &[],
        None,
        Duration::from_secs(10),
    )
    .ok("host key");
    let ip = e2e::free_ip(&[2022]);
    std::fs::write(
        dir.join("sshd.conf"),
        format!(
            "Port 2022\nListenAddress {ip}\nHostKey {d}/sshd_host\nTrustedUserCAKeys {d}/user_ca.pub\nAuthorizedKeysFile none\nPidFile {d}/sshd.pid\nUsePAM yes\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel ERROR\n",
            d = dir.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let sshd = std::process::Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f", dir.join("sshd.conf").to_str().unwrap()])
        .spawn()
        .expect("sshd (install openssh-server)");
    let sshd = KillOnDrop(sshd);
    let base = e2e::OPENSSH_BATCH;
    let key = prof.join("id_ed25519").display().to_string();
    let certopt = format!("CertificateFile={}", cert.display());
    let visitor_dest = format!("visitor@{ip}");
    let out = wait_for("stock sshd to accept our certificate", Duration::from_secs(10), || {
        let mut a: Vec<&str> = base.to_vec();
        a.extend(["-i", key.as_str(), "-o", certopt.as_str(), "-p", "2022", visitor_dest.as_str(), "id -un"]);
        let o = ssh(&a);
        (o.code == 0).then_some(o)
    });
    assert_eq!(out.stdout, "visitor\n");
    let mut a: Vec<&str> = base.to_vec();
    let denied = format!("root@{ip}");
    a.extend(["-i", key.as_str(), "-o", certopt.as_str(), "-p", "2022", denied.as_str(), "true"]);
    assert_eq!(ssh(&a).code, 255, "a login outside the certificate's principals is refused by sshd");
    drop(sshd);

    // Stock ssh trusts our node's host certificate through @cert-authority.
    let kh = dir.join("known_hosts");
    std::fs::write(&kh, c.tctl(&["auth", "export", "--type=host"]).ok("export host CA")).unwrap();
    let alias = format!("HostKeyAlias={}.{}", c.node_name(), c.opts.name);
    let strict = |known: &Path| {
        let khs = format!("UserKnownHostsFile={}", known.display());
        let args = [
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            &khs,
            "-o",
            &alias,
            "-o",
            "IdentitiesOnly=yes",
            "-i",
            &key,
            "-o",
            &certopt,
            "-p",
            "3022",
            &format!("visitor@{}", c.ip),
            "echo trusted",
        ];
        ssh(&args)
    };
    assert_eq!(strict(&kh).ok("host certificate accepted").trim(), "trusted");
    let empty = dir.join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    assert_eq!(strict(&empty).code, 255, "without the CA line the host is not trusted");
}

fn check_fresh(binary: &str, shell: &str, file: &str) {
    let out = run(&bin(binary), &["completion", shell], &[], None, Duration::from_secs(10));
    let generated = out.ok("completion").to_string();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("completions").join(file);
    if std::env::var_os("UPDATE_COMPLETIONS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "completions/{file} is stale: run `UPDATE_COMPLETIONS=1 cargo nextest run -p e2e completions` and commit"
    );
}

#[test]
fn completions_are_committed_and_fresh() {
    for (binary, files) in [("tctl", ["tctl.bash", "_tctl", "tctl.fish"]), ("tsh", ["tsh.bash", "_tsh", "tsh.fish"])] {
        for (shell, file) in ["bash", "zsh", "fish"].iter().zip(files) {
            check_fresh(binary, shell, file);
        }
    }
}

fn subcommands(binary: &str) -> Vec<String> {
    let help = run(&bin(binary), &["--help"], &[], None, Duration::from_secs(10)).ok("help").to_string();
    help.split("Commands:")
        .nth(1)
        .unwrap_or_default()
        .split("Options:")
        .next()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn help_teaches_and_usage_errors_suggest() {
    for binary in ["tctl", "tsh"] {
        let help = run(&bin(binary), &["--help"], &[], None, Duration::from_secs(10)).ok("help").to_string();
        let snap = Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots").join(format!("{binary}-help.txt"));
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&snap, &help).unwrap();
        }
        assert_eq!(
            help,
            std::fs::read_to_string(&snap).unwrap_or_default(),
            "{binary} --help changed: review and run with UPDATE_SNAPSHOTS=1"
        );
        assert!(help.contains("Exit codes"), "{help}");
        for sub in subcommands(binary) {
            let h = run(&bin(binary), &[&sub, "--help"], &[], None, Duration::from_secs(10));
            let text = h.ok(&format!("{binary} {sub} --help")).to_string();
            assert!(text.lines().next().is_some_and(|l| !l.is_empty()), "{binary} {sub}: a one-line purpose first");
            // Commands with subcommands give examples there; every leaf command has one.
            if !text.contains("Commands:") {
                assert!(text.contains("Example"), "{binary} {sub} --help has no example:\n{text}");
            }
        }
    }
    let typo = run(&bin("tctl"), &["user", "ls"], &[], None, Duration::from_secs(10));
    assert_eq!(typo.code, 2);
    assert!(typo.stderr.contains("similar subcommand") && typo.stderr.contains("users"), "{}", typo.stderr);
    let bad = run(&bin("tsh"), &["clusters", "--format=xml"], &[], None, Duration::from_secs(10));
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("use one of: text, json, yaml"), "{}", bad.stderr);
}

#[test]
fn every_json_listing_parses_with_jq_and_logs_are_plain() {
    ensure_unix_user("visitor");
    let c = Cluster::start(ClusterOpts::new("json.example.com"));
    c.add_user("myuser", "access,editor", "visitor", PW);
    c.tctl(&["tokens", "add", "--type=node"]).ok("token");
    let mut tsh = Tsh::new("json");
    tsh.login(&c, "myuser", PW).ok("login");
    let jq = |what: &str, out: e2e::Out| {
        let json = out.ok(what).to_string();
        let parsed = run(Path::new("jq"), &["-e", "type == \"array\" or type == \"object\""], &[], Some(&json), Duration::from_secs(10));
        assert_eq!(parsed.code, 0, "{what}: jq could not parse:\n{json}");
        assert!(out.stderr.is_empty(), "{what}: nothing on stderr with JSON: {}", out.stderr);
    };
    for kind in ["roles", "users", "tokens", "rc", "tc", "cas", "nodes"] {
        jq(&format!("tctl get {kind}"), c.tctl(&["get", kind, "--format=json"]));
    }
    jq("tctl tokens ls", c.tctl(&["tokens", "ls", "-f", "json"]));
    jq("tctl users ls", c.tctl(&["users", "ls", "-f", "json"]));
    jq("tctl tokens add", c.tctl(&["tokens", "add", "--type=node", "--format=json"]));
    jq("tsh ls", tsh.run(&["ls", "-f", "json"]));
    jq("tsh clusters", tsh.run(&["clusters", "-f", "json"]));
    jq("tsh status", tsh.run(&["status", "-f", "json"]));
    jq("tsh sessions ls", tsh.run(&["sessions", "ls", "-f", "json"]));
    jq("tsh recordings ls", tsh.run(&["recordings", "ls", "-f", "json"]));
    let log = c.log();
    assert!(!log.contains('\u{1b}'), "no colour codes when logging to a file");
    assert!(
        log.lines().all(|l| l.is_empty() || l.chars().next().is_some_and(|ch| ch.is_ascii_digit())),
        "one event per line, each starting with its timestamp"
    );
}
