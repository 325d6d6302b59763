//! Databases across trusted clusters, first part: each cluster's `db` certificate authority,
//! and `tctl auth sign --format=db`, whose files configure the real PostgreSQL.

use std::time::Duration;

use e2e::{Cluster, ClusterOpts};

#[test]
fn tctl_auth_sign_format_db_gives_postgresql_a_certificate_clients_verify_with_the_db_ca() {
    let mut o = ClusterOpts::new("db-ca.example.com");
    o.node = false;
    let c = Cluster::start(o);
    // Created at first start, shown without its private key.
    let ca = c.tctl(&["get", "cert_authority/db", "--format=json"]);
    let text = ca.ok("tctl get cert_authority/db");
    assert!(text.contains("\"db\"") && !text.contains("PRIVATE KEY"), "{text}");

    let dir = e2e::TempDir::new("db-certs");
    let prefix = dir.path().join("server");
    let p = prefix.display().to_string();
    let out = c.tctl(&["auth", "sign", "--format=db", "--host=pg.db-ca.test,localhost", &format!("--out={p}"), "--ttl=24h"]);
    let said = out.ok("tctl auth sign --format=db");
    assert!(said.contains("ssl_ca_file") && said.contains("hostssl all all"), "{said}");
    let read = |ext: &str| std::fs::read_to_string(format!("{p}{ext}")).unwrap_or_default();
    let (crt, key, cas) = (read(".crt"), read(".key"), read(".cas"));
    assert!(crt.contains("BEGIN CERTIFICATE") && key.contains("PRIVATE KEY") && cas.contains("BEGIN CERTIFICATE"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(format!("{p}.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key is the operator's alone");
    // Asked again, nothing is overwritten.
    let again = c.tctl(&["auth", "sign", "--format=db", "--host=pg.db-ca.test", &format!("--out={p}")]);
    assert!(again.code == 1 && again.stderr.contains("exists") && again.stderr.lines().count() == 1, "{again:?}");
    // Bad input: one line, non-zero, nothing written.
    let none = c.tctl(&["auth", "sign", "--format=db", &format!("--out={p}-x")]);
    assert!(none.code != 0 && none.stderr.contains("--host"), "{none:?}");
    assert!(!std::path::Path::new(&format!("{p}-x.crt")).exists());

    // The real PostgreSQL serves it; psql verifies the server's name against the db CA.
    let (pg, _) = e2e::postgres::PgServer::start_with_tls(&crt, &key, &cas, Some(&cas));
    let conn = format!(
        "host=pg.db-ca.test hostaddr={} port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={p}.cas",
        pg.ip, pg.port
    );
    let q = e2e::run(
        std::path::Path::new("psql"),
        &["-X", "-At", &conn, "-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"],
        &[],
        None,
        Duration::from_secs(30),
    );
    assert_eq!(q.stdout.trim(), "t", "{q:?}");
    // Another name is refused by psql itself.
    let wrong = conn.replace("host=pg.db-ca.test", "host=other.db-ca.test");
    let refused = e2e::run(std::path::Path::new("psql"), &["-X", "-At", &wrong, "-c", "SELECT 1"], &[], None, Duration::from_secs(30));
    assert!(refused.code != 0 && refused.stderr.contains("does not match host name"), "{refused:?}");

    // The db CA rotates with the phases of the others: in init the bundle holds both keys.
    c.tctl(&["auth", "rotate", "--type=db", "--manual", "--phase=init"]).ok("rotate init");
    let p2 = dir.path().join("rotated").display().to_string();
    c.tctl(&["auth", "sign", "--format=db", "--host=pg.db-ca.test", &format!("--out={p2}")]).ok("sign in init");
    let bundle = std::fs::read_to_string(format!("{p2}.cas")).unwrap_or_default();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2, "old and new db CA: {bundle}");
}

#[test]
fn tctl_creates_lists_and_removes_db_resources_checked_as_teleport_checks_them() {
    let mut o = ClusterOpts::new("db-res.example.com");
    o.node = false;
    let c = Cluster::start(o);
    c.create("pg.yaml", "kind: db\nversion: v3\nmetadata: {name: orders-pg, description: Orders, labels: {env: prod}}\nspec:\n  protocol: postgres\n  uri: db.internal:5432\n  tls: {mode: verify-ca}\n")
        .ok("tctl create db");
    let text = c.tctl(&["get", "dbs", "--format=text"]);
    let t = text.ok("tctl get dbs");
    assert!(t.contains("orders-pg") && t.contains("postgres") && t.contains("db.internal:5432") && t.contains("(defined)"), "{t}");
    let yaml = c.tctl(&["get", "db/orders-pg"]);
    assert!(yaml.ok("tctl get db/orders-pg").contains("mode: verify-ca"), "{yaml:?}");
    for (doc, says) in [
        ("kind: db\nversion: v3\nmetadata: {name: m}\nspec:\n  protocol: mysql\n  uri: h:3306\n", "not supported yet; use postgres"),
        ("kind: db\nversion: v3\nmetadata: {name: u}\nspec:\n  protocol: postgres\n  uri: postgres://h:5432\n", "without a scheme"),
        ("kind: db\nversion: v3\nmetadata: {name: t}\nspec:\n  protocol: postgres\n  uri: h:5432\n  tls: {mode: disable}\n", "tls.mode"),
    ] {
        let bad = c.create("bad.yaml", doc);
        assert!(bad.code == 1 && bad.stderr.contains(says) && bad.stderr.lines().count() == 1, "{bad:?}");
    }
    c.tctl(&["rm", "db/orders-pg"]).ok("tctl rm db");
    assert!(!c.tctl(&["get", "dbs", "--format=text"]).stdout.contains("orders-pg"));
}

#[test]
fn a_leafs_databases_are_listed_at_the_root_with_the_users_the_leafs_mapped_roles_allow() {
    use e2e::{PASSWORD, Tsh, tc_yaml, wait_for};
    e2e::ensure_unix_user("visitor");
    let t = Duration::from_secs(30);
    let mut ro = ClusterOpts::new("root-dbls.example.com");
    ro.node = false;
    let root = Cluster::start(ro);
    root.add_user("alice", "access", "visitor", PASSWORD);
    let mut lo = ClusterOpts::new("leaf-dbls.example.com");
    lo.node = false;
    lo.env = vec![("SSL_CERT_FILE".into(), root.web_ca().display().to_string())];
    lo.sections = "db_service:\n  enabled: yes\n  databases:\n  - name: dev-pg\n    description: Development\n    protocol: postgres\n    uri: 127.0.0.1:5432\n    static_labels: {env: dev}\n  - name: prod-pg\n    protocol: postgres\n    uri: 127.0.0.1:5433\n    static_labels: {env: prod}\n".into();
    let leaf = Cluster::start(lo);
    leaf.create(
        "visitor.yaml",
        "kind: role\nversion: v7\nmetadata: {name: visitor}\nspec:\n  allow:\n    logins: [visitor]\n    db_labels: {env: dev}\n    db_users: [alice, postgres]\n    db_names: [dev]\n  deny:\n    db_users: [postgres]\n",
    )
    .ok("leaf role");
    let token = root.trusted_cluster_token("5m");
    leaf.create("tc.yaml", &tc_yaml(&root.opts.name, &token, &root, true, e2e::ACCESS_TO_VISITOR)).ok("trust");
    root.wait_remote_status("leaf-dbls.example.com", "online", t);
    let text = wait_for("the database service's heartbeats", t, || {
        let o = leaf.tctl(&["get", "dbs", "--format=text"]);
        (o.code == 0 && o.stdout.contains("prod-pg")).then(|| o.stdout.clone())
    });
    assert!(text.contains("leaf-dbls-node"), "served by the leaf's process: {text}");
    let mut alice = Tsh::new("alice-dbls");
    alice.login(&root, "alice", PASSWORD).ok("alice signs in");
    let ls = alice.run(&["db", "ls", "--cluster=leaf-dbls.example.com"]);
    let table = ls.ok("tsh db ls");
    assert!(table.contains("Allowed Users") && table.contains("Connect"), "{table}");
    let line = table.lines().find(|l| l.starts_with("dev-pg")).unwrap_or_else(|| panic!("{table}"));
    assert!(line.contains("[alice]") && !line.contains("postgres]"), "the mapped role's users, less the denied: {line}");
    assert!(line.contains("tsh db connect --cluster=leaf-dbls.example.com dev-pg"), "{line}");
    assert!(!table.contains("prod-pg"), "db_labels of the mapped role decide: {table}");
    let json = alice.run(&["db", "ls", "--all", "-f", "json"]).json();
    let first = &json[0];
    assert_eq!((first["metadata"]["name"].as_str(), first["cluster"].as_str()), (Some("dev-pg"), Some("leaf-dbls.example.com")), "{json}");
    assert_eq!(first["users"]["allowed"], serde_json::json!(["alice"]), "{json}");
    assert_eq!(first["names"]["allowed"], serde_json::json!(["dev"]), "{json}");
}
