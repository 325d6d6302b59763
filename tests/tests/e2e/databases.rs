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
    lo.sections = "db_service:\n  enabled: yes\n  databases:\n  - name: dev-pg\n    description: Development\n    protocol: postgres\n    uri: 127.0.0.1:5432\n    static_labels: {env: dev}\n    dynamic_labels:\n    - {name: region, command: [echo, eu-west], period: 1m}\n  - name: prod-pg\n    protocol: postgres\n    uri: 127.0.0.1:5433\n    static_labels: {env: prod}\n".into();
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
    assert!(line.contains("region=eu-west"), "the dynamic label's command ran: {line}");
    assert!(!table.contains("prod-pg"), "db_labels of the mapped role decide: {table}");
    let json = alice.run(&["db", "ls", "--all", "-f", "json"]).json();
    let first = &json[0];
    assert_eq!((first["metadata"]["name"].as_str(), first["cluster"].as_str()), (Some("dev-pg"), Some("leaf-dbls.example.com")), "{json}");
    assert_eq!(first["users"]["allowed"], serde_json::json!(["alice"]), "{json}");
    assert_eq!(first["names"]["allowed"], serde_json::json!(["dev"]), "{json}");
}

/// A leaf named `name` trusting `root`, its database service serving `pg` at a real PostgreSQL
/// of its own (certificates from the leaf's `db` CA, `hostssl ... cert`), with roles `alice`
/// and `reader`, databases `dev` (alice's) and `prod`, and a table saying which leaf it is.
fn leaf_with_postgres(root: &Cluster, name: &str) -> (Cluster, e2e::postgres::PgServer, e2e::TempDir) {
    use e2e::postgres::PORT;
    let pg_ip = e2e::free_ip(&[PORT]);
    let mut lo = ClusterOpts::new(name);
    lo.node = false;
    lo.env = vec![("SSL_CERT_FILE".into(), root.web_ca().display().to_string())];
    lo.sections = format!(
        "db_service:\n  enabled: yes\n  databases:\n  - name: pg\n    description: Customer database\n    protocol: postgres\n    uri: {pg_ip}:{PORT}\n    static_labels: {{env: dev}}\n"
    );
    let leaf = Cluster::start(lo);
    leaf.create(
        "visitor.yaml",
        "kind: role\nversion: v7\nmetadata: {name: visitor}\nspec:\n  allow:\n    logins: [visitor]\n    db_labels: {env: dev}\n    db_users: [alice, reader]\n    db_names: [dev]\n  deny:\n    db_users: [postgres]\n",
    )
    .ok("leaf role");
    let (pg, dir) = postgres_at(&leaf, &pg_ip, name);
    pg.admin("postgres", "CREATE ROLE reader LOGIN");
    pg.admin("postgres", "CREATE DATABASE prod");
    let token = root.trusted_cluster_token("5m");
    leaf.create("tc.yaml", &e2e::tc_yaml(&root.opts.name, &token, root, true, e2e::ACCESS_TO_VISITOR)).ok("trust");
    root.wait_remote_status(name, "online", Duration::from_secs(30));
    (leaf, pg, dir)
}

/// `tsh proxy db` in the background and the port it listens on.
fn proxy_db(tsh: &e2e::Tsh, args: &[&str]) -> (std::process::Child, u16) {
    use std::io::BufRead;
    let mut all = vec!["proxy", "db"];
    all.extend_from_slice(args);
    let mut child =
        tsh.command(&all).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::inherit()).spawn().expect("tsh proxy db");
    let mut first = String::new();
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = std::io::BufReader::new(stdout);
    reader.read_line(&mut first).expect("tsh proxy db says where it listens");
    let port = first
        .rsplit("127.0.0.1:")
        .next()
        .and_then(|r| r.trim().trim_end_matches('.').parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no port in {first:?}"));
    // Keep reading so that the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in reader.lines() {});
    (child, port)
}

fn psql(conn: &str, sql: &str, env: &[(&str, &str)]) -> e2e::Out {
    e2e::run(std::path::Path::new("psql"), &["-X", "-At", conn, "-c", sql], env, None, Duration::from_secs(30))
}

#[test]
fn tsh_db_connect_reaches_each_leafs_postgres_as_the_user_the_leafs_mapped_roles_allow() {
    use e2e::{PASSWORD, Tsh, wait_for};
    e2e::ensure_unix_user("visitor");
    let t = Duration::from_secs(30);
    let mut ro = ClusterOpts::new("root-db.example.com");
    ro.node = false;
    let root = Cluster::start(ro);
    root.add_user("alice", "access", "visitor", PASSWORD);
    let (east, _east_pg, _d1) = leaf_with_postgres(&root, "east-db.example.com");
    let (west, _west_pg, _d2) = leaf_with_postgres(&root, "west-db.example.com");
    for leaf in [&east, &west] {
        wait_for("the leaf's database heartbeat", t, || leaf.tctl(&["get", "dbs", "--format=text"]).stdout.contains("pg").then_some(()));
    }
    let mut alice = Tsh::new("alice-db");
    alice.login(&root, "alice", PASSWORD).ok("alice signs in");

    // The guide's command: the leaf's database, as alice, verified TLS all the way.
    let login = alice.run(&["db", "login", "--cluster=east-db.example.com", "--db-user=alice", "--db-name=dev", "pg"]);
    let said = login.ok("tsh db login");
    assert!(said.contains("Connection information for database \"pg\" has been saved."), "{said}");
    assert!(said.contains("tsh db connect --cluster=east-db.example.com pg") && said.contains("tsh proxy db"), "{said}");
    let sql = "SELECT current_user, current_database(), c, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) FROM whoami";
    let q = alice.run(&[
        "db",
        "connect",
        "--cluster=east-db.example.com",
        "--db-user=alice",
        "--db-name=dev",
        "pg",
        "--",
        "-X",
        "-At",
        "-c",
        sql,
    ]);
    assert_eq!(q.stdout.trim(), "alice|dev|east-db.example.com|t", "{q:?}");
    // The same name in another leaf is that leaf's database.
    let w = alice.run(&[
        "db",
        "connect",
        "--cluster=west-db.example.com",
        "--db-user=alice",
        "--db-name=dev",
        "pg",
        "--",
        "-X",
        "-At",
        "-c",
        sql,
    ]);
    assert_eq!(w.stdout.trim(), "alice|dev|west-db.example.com|t", "{w:?}");
    let ls = alice.run(&["db", "ls", "--cluster=east-db.example.com"]);
    assert!(ls.ok("tsh db ls").contains("> pg (user: alice, db: dev)"), "{ls:?}");

    // What the leaf refuses, with the rule, whether tsh or only the StartupMessage names it.
    let pg_user = alice.run(&[
        "db",
        "connect",
        "--cluster=east-db.example.com",
        "--db-user=postgres",
        "--db-name=dev",
        "pg",
        "--",
        "-X",
        "-c",
        "SELECT 1",
    ]);
    assert!(pg_user.code != 0 && pg_user.stderr.contains("denies database user \"postgres\""), "{pg_user:?}");
    let prod = alice.run(&[
        "db",
        "connect",
        "--cluster=east-db.example.com",
        "--db-user=alice",
        "--db-name=prod",
        "pg",
        "--",
        "-X",
        "-c",
        "SELECT 1",
    ]);
    assert!(prod.code != 0 && prod.stderr.contains("database name \"prod\" is not in db_names"), "{prod:?}");
    let cfg = alice.run(&["db", "config", "--cluster=east-db.example.com", "--format=json", "pg"]).json();
    let (ca, cert, key) = (cfg["ca"].as_str().unwrap_or(""), cfg["cert"].as_str().unwrap_or(""), cfg["key"].as_str().unwrap_or(""));
    assert_eq!(
        (cfg["user"].as_str(), cfg["database"].as_str(), cfg["host"].as_str()),
        (Some("alice"), Some("dev"), Some(root.ip.as_str())),
        "{cfg}"
    );
    let direct = |user: &str, db: &str| {
        format!("host={} port=3080 user={user} dbname={db} sslmode=verify-full sslrootcert={ca} sslcert={cert} sslkey={key}", root.ip)
    };
    let as_postgres = psql(&direct("postgres", "dev"), "SELECT 1", &[]);
    assert!(
        as_postgres.code != 0 && as_postgres.stderr.contains("denies database user \"postgres\""),
        "the certificate's alice is a default only: {as_postgres:?}"
    );
    let to_prod = psql(&direct("alice", "prod"), "SELECT 1", &[]);
    assert!(to_prod.code != 0 && to_prod.stderr.contains("\"prod\" is not in db_names"), "{to_prod:?}");
    let reader = psql(&direct("reader", "dev"), "SELECT current_user", &[]);
    assert_eq!(reader.stdout.trim(), "reader", "another allowed user, named in the StartupMessage alone: {reader:?}");
    // Without TLS, or without a certificate, the proxy says why.
    let plain = psql(&format!("host={} port=3080 user=alice dbname=dev sslmode=disable", root.ip), "SELECT 1", &[]);
    assert!(plain.code != 0 && plain.stderr.contains("expected a TLS connection"), "{plain:?}");
    let anonymous =
        psql(&format!("host={} port=3080 user=alice dbname=dev sslmode=verify-full sslrootcert={ca}", root.ip), "SELECT 1", &[]);
    assert!(anonymous.code != 0 && anonymous.stderr.contains("requires a client certificate"), "{anonymous:?}");
    // A database certificate opens its database and nothing else.
    let api = e2e::run(
        std::path::Path::new("curl"),
        &[
            "-s",
            "--cacert",
            ca,
            "--cert",
            cert,
            "--key",
            key,
            "--resolve",
            &format!("teleport.cluster.local:3080:{}", root.ip),
            "https://teleport.cluster.local:3080/v1/whoami",
        ],
        &[],
        None,
        t,
    );
    assert!(api.stdout.contains("a database certificate reaches its database only"), "{api:?}");

    // tsh db env and config, as PostgreSQL clients read them.
    let env = alice.run(&["db", "env", "--cluster=east-db.example.com", "pg"]);
    let env_text = env.ok("tsh db env");
    assert!(
        env_text.contains("export PGSSLMODE=verify-full")
            && env_text.contains("export PGUSER=alice")
            && env_text.contains("export PGDATABASE=dev"),
        "{env_text}"
    );
    let via_env = alice.sh(
        &format!(
            "eval \"$({} db env --cluster=east-db.example.com pg)\" && psql -X -At -c 'SELECT current_user'",
            e2e::bin("tsh").display()
        ),
        None,
    );
    assert_eq!(via_env.stdout.trim(), "alice", "{via_env:?}");

    // tsh proxy db: any client on localhost, psql and pgbench.
    let (mut tunnel, port) = proxy_db(&alice, &["--cluster=east-db.example.com", "--tunnel", "pg"]);
    let local = |user: &str, db: &str| format!("postgres://{user}@127.0.0.1:{port}/{db}");
    assert_eq!(psql(&local("alice", "dev"), "SELECT c FROM whoami", &[]).stdout.trim(), "east-db.example.com");
    let refused = psql(&local("postgres", "dev"), "SELECT 1", &[]);
    assert!(refused.code != 0 && refused.stderr.contains("denies database user \"postgres\""), "{refused:?}");
    let pgbench = |args: &[&str]| e2e::run(std::path::Path::new("pgbench"), args, &[], None, Duration::from_secs(120));
    let init = pgbench(&["-i", "-s", "1", "-q", &local("alice", "dev")]);
    assert_eq!(init.code, 0, "pgbench -i through tsh proxy db: {init:?}");
    let run = pgbench(&["-S", "-c", "2", "-t", "50", &local("alice", "dev")]);
    assert!(run.code == 0 && run.stdout.contains("number of transactions actually processed: 100/100"), "{run:?}");
    let extended = pgbench(&["-S", "-M", "extended", "-c", "1", "-t", "5", &local("alice", "dev")]);
    assert_eq!(extended.code, 0, "{extended:?}");

    // The audit is the leaf's: the mapped roles, the database user and name, the queries.
    let events = wait_for("the leaf's database events", t, || {
        let e = east.events();
        e.iter().any(|v| v["event"] == "db.session.postgres.statements.bind").then_some(e)
    });
    let start = events.iter().find(|v| v["code"] == "TDB00I").unwrap_or_else(|| panic!("no db.session.start: {events:?}"));
    assert_eq!(start["user"], "remote-alice-root-db.example.com", "{start}");
    assert_eq!(
        (start["db_user"].as_str(), start["db_name"].as_str(), start["db_service"].as_str()),
        (Some("alice"), Some("dev"), Some("pg")),
        "{start}"
    );
    assert_eq!(start["roles"], serde_json::json!(["visitor"]), "the mapped roles: {start}");
    let query = events.iter().find(|v| v["code"] == "TDB02I" && v["db_query"].as_str().is_some_and(|q| q.contains("FROM whoami")));
    assert!(query.is_some(), "db.session.query: {events:?}");
    let denied =
        events.iter().find(|v| v["code"] == "TDB00W" && v["db_user"] == "postgres").unwrap_or_else(|| panic!("no denial: {events:?}"));
    assert!(denied["error"].as_str().unwrap_or("").contains("deny.db_users"), "{denied}");
    assert!(events.iter().any(|v| v["code"] == "TDB01I"), "db.session.end");
    assert!(
        events.iter().any(|v| v["code"] == "TPG00I") && events.iter().any(|v| v["code"] == "TPG02I"),
        "the extended protocol's statements"
    );
    assert!(!root.events().iter().any(|v| v["event"].as_str().is_some_and(|e| e.starts_with("db."))), "the root keeps no database events");

    // A lock at the root ends a live session on the leaf.
    let mut sleeper = std::process::Command::new("psql")
        .args(["-X", "-At", &local("alice", "dev"), "-c", "SELECT pg_sleep(60)"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("psql");
    wait_for("the session to be running", t, || {
        let n =
            _east_pg.admin("postgres", "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND usename = 'alice'");
        (n.trim() == "1").then_some(())
    });
    root.tctl(&["lock", "--user=alice", "--message=Investigating.", "--ttl=10m"]).ok("tctl lock");
    let ended = wait_for("the lock to end the session", t, || sleeper.try_wait().ok().flatten());
    assert!(!ended.success(), "psql was cut off");
    let after = psql(&local("alice", "dev"), "SELECT 1", &[]);
    assert!(after.code != 0, "{after:?}");
    let _ = tunnel.kill();
    let _ = tunnel.wait();

    // Logging out removes the files.
    let out = alice.run(&["db", "logout"]);
    assert!(out.ok("tsh db logout").contains("Logged out of all databases."), "{out:?}");
    assert!(alice.run(&["db", "config", "pg"]).stderr.contains("not logged into database"));
}

use e2e::postgres::{postgres_at, postgres_for};

#[test]
fn a_roots_own_database_on_postgres_listen_addr_and_a_leaf_database_served_by_a_process_of_its_own() {
    use e2e::{PASSWORD, Tsh, wait_for};
    e2e::ensure_unix_user("visitor");
    let t = Duration::from_secs(30);
    // The root serves a database of its own, on a PostgreSQL port of its own too.
    let ip = e2e::free_ip(&[3080, 3022, 3000, 5433]);
    let mut ro = ClusterOpts::new("root-dbown.example.com");
    ro.node = false;
    ro.ip = Some(ip.clone());
    ro.proxy_extra = format!("  postgres_listen_addr: {ip}:5433\n");
    let mut root = Cluster::start(ro);
    let (root_pg, _d0) = postgres_for(&root, "root");
    root.opts.sections = format!(
        "db_service:\n  enabled: yes\n  databases:\n  - name: main\n    protocol: postgres\n    uri: {}:{}\n    static_labels: {{env: dev}}\n",
        root_pg.ip, root_pg.port
    );
    root.rewrite_config();
    root.restart();
    root.create(
        "dba.yaml",
        "kind: role\nversion: v7\nmetadata: {name: dba}\nspec:\n  allow:\n    db_labels: {env: dev}\n    db_users: [alice]\n    db_names: [dev]\n",
    )
    .ok("root role");
    root.add_user("alice", "access,dba", "visitor", PASSWORD);
    // A leaf whose database service runs in a process of its own, joined with a token.
    let mut lo = ClusterOpts::new("leaf-dbown.example.com");
    lo.node = false;
    lo.env = vec![("SSL_CERT_FILE".into(), root.web_ca().display().to_string())];
    let leaf = Cluster::start(lo);
    leaf.create(
        "visitor.yaml",
        "kind: role\nversion: v7\nmetadata: {name: visitor}\nspec:\n  allow:\n    logins: [visitor]\n    db_labels: {env: dev}\n    db_users: [alice]\n    db_names: [dev]\n",
    )
    .ok("leaf role");
    let (leaf_pg, _d1) = postgres_for(&leaf, "leaf-agent");
    let section = format!(
        "db_service:\n  enabled: yes\n  databases:\n  - name: orders\n    protocol: postgres\n    uri: {}:{}\n    static_labels: {{env: dev}}\n",
        leaf_pg.ip, leaf_pg.port
    );
    let agent = e2e::NodeProc::join_db(&leaf, "db-agent", &section);
    let token = root.trusted_cluster_token("5m");
    leaf.create("tc.yaml", &e2e::tc_yaml(&root.opts.name, &token, &root, true, e2e::ACCESS_TO_VISITOR)).ok("trust");
    root.wait_remote_status("leaf-dbown.example.com", "online", t);
    let listed = wait_for("the agent's database", t, || {
        let o = leaf.tctl(&["get", "dbs", "--format=text"]);
        o.stdout.contains("orders").then(|| o.stdout.clone())
    });
    assert!(listed.contains("db-agent"), "served by the agent's process: {listed}\n{}", agent.log());
    wait_for("the root's own database", t, || root.tctl(&["get", "dbs", "--format=text"]).stdout.contains("main").then_some(()));

    let mut alice = Tsh::new("alice-dbown");
    alice.login(&root, "alice", PASSWORD).ok("alice signs in");
    // The root's own database, through the web port and through postgres_listen_addr.
    let said = alice.run(&["db", "login", "--db-user=alice", "--db-name=dev", "main"]);
    said.ok("tsh db login main");
    let cfg = alice.run(&["db", "config", "--format=json", "main"]).json();
    assert_eq!(cfg["port"], serde_json::json!(5433), "tsh gives psql the PostgreSQL port the proxy reports: {cfg}");
    let q = alice.run(&["db", "connect", "main", "--", "-X", "-At", "-c", "SELECT current_user, c FROM whoami"]);
    assert_eq!(q.stdout.trim(), "alice|root", "{q:?}");
    let (ca, cert, key) = (cfg["ca"].as_str().unwrap_or(""), cfg["cert"].as_str().unwrap_or(""), cfg["key"].as_str().unwrap_or(""));
    let web = psql(
        &format!("host={} port=3080 user=alice dbname=dev sslmode=verify-full sslrootcert={ca} sslcert={cert} sslkey={key}", root.ip),
        "SELECT c FROM whoami",
        &[],
    );
    assert_eq!(web.stdout.trim(), "root", "the web port serves PostgreSQL clients as well: {web:?}");
    // The leaf's database through the agent's own tunnel.
    let q = alice.run(&[
        "db",
        "connect",
        "--cluster=leaf-dbown.example.com",
        "--db-user=alice",
        "--db-name=dev",
        "orders",
        "--",
        "-X",
        "-At",
        "-c",
        "SELECT current_user, c FROM whoami",
    ]);
    assert_eq!(q.stdout.trim(), "alice|leaf-agent", "{q:?}\n{}", agent.log());
    let events = wait_for("the leaf's events", t, || {
        let e = leaf.events();
        e.iter().any(|v| v["code"] == "TDB02I").then_some(e)
    });
    let query = events.iter().find(|v| v["code"] == "TDB02I").unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!((query["user"].as_str(), query["server_id"].is_string()), (Some("remote-alice-root-dbown.example.com"), true), "{query}");
    // The root's own events name the root's user as they are.
    let root_events = root.events();
    assert!(root_events.iter().any(|v| v["code"] == "TDB00I" && v["user"] == "alice" && v["db_service"] == "main"), "{root_events:?}");
}
