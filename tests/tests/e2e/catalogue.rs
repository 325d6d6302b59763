//! Issue 7, the bad input catalogue: one table of hostile or mistaken inputs across every way in
//! (resource YAML, `tctl` and `tsh` arguments, REST bodies, SSH subsystem requests, forged and
//! broken certificates). Each one gets a clear error, and the cluster's stored state is
//! byte-for-byte what it was before (read straight from the SQLite file, with only the
//! heartbeat-driven node records left out).

use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::{Cluster, ClusterOpts, Out, PASSWORD, Tsh, ensure_unix_user, openssh, run};
use shared::certs::{SshCertParams, TlsCertParams};
use shared::profile::{Credentials, read_identity_file, write_identity_file};
use time::OffsetDateTime;

/// What a case must produce.
enum Expect {
    /// `tctl`/`tsh` exit code 1 and one `ERROR: ...` line containing this.
    Error(&'static str),
    /// A usage error: exit code 2 and this in the message.
    Usage(&'static str),
    /// An HTTP answer with this status and a JSON error containing this.
    Http(u16, &'static str),
    /// A non-zero exit (stock OpenSSH or curl) with this in stderr, and `log` in the daemon's log.
    Refused { stderr: &'static str, log: &'static str },
}

struct Case<'a> {
    what: String,
    expect: Expect,
    run: Box<dyn Fn() -> Out + 'a>,
}

fn case<'a>(what: impl Into<String>, expect: Expect, run: impl Fn() -> Out + 'a) -> Case<'a> {
    Case { what: what.into(), expect, run: Box::new(run) }
}

/// Every stored key and value except node heartbeats, sorted by key.
fn dump(db: &Path) -> Vec<(String, Vec<u8>, Option<i64>)> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open database");
    let mut stmt = conn
        .prepare("SELECT key, value, expires FROM kv WHERE key NOT LIKE 'nodes/%' AND key NOT LIKE 'nodenames/%' AND key NOT LIKE 'rcstatus/%' AND key NOT LIKE 'proxies/%' ORDER BY key")
        .expect("select");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).expect("query").collect::<rusqlite::Result<_>>().expect("rows")
}

/// A JSON request with curl (from `source`, so the per-address rate limits of one case do not
/// spill into the next). `Out.code` is the HTTP status. curl asks before sending a body over
/// 1 MiB (`Expect: 100-continue`) and waits up to 30 s for the answer, so a body the server
/// refuses unread is never sent, however slow the machine.
fn http(c: &Cluster, method: &str, path: &str, body: &[u8], source: &str) -> Out {
    let file = c.dir.path().join(format!("body-{}.json", shared::certs::random_hex(4)));
    std::fs::write(&file, body).expect("body");
    let url = format!("https://{}{path}", c.web);
    let ca = c.web_ca().display().to_string();
    let data = format!("@{}", file.display());
    let out = run(
        Path::new("curl"),
        &[
            "-s",
            "--expect100-timeout",
            "30",
            "--cacert",
            &ca,
            "--interface",
            source,
            "-X",
            method,
            "-w",
            "\n%{http_code}",
            "--data-binary",
            &data,
            &url,
        ],
        &[],
        None,
        Duration::from_secs(30),
    );
    let (body, status) = out.stdout.rsplit_once('\n').unwrap_or(("", "0"));
    Out { code: status.trim().parse().unwrap_or(0), stdout: body.to_string(), stderr: out.stderr }
}

/// Key and certificate files for stock OpenSSH from `creds`.
fn openssh_files(dir: &Path, tag: &str, creds: &Credentials) -> (String, String) {
    let key = dir.join(format!("{tag}-key"));
    shared::profile::write_file(&key, shared::certs::ssh_key_to_pem(&creds.ssh_key).expect("pem").as_bytes(), 0o600).expect("key");
    let cert = dir.join(format!("{tag}-key-cert.pub"));
    std::fs::write(&cert, format!("{}\n", shared::certs::ssh_cert_line(&creds.ssh_cert))).expect("cert");
    (key.display().to_string(), format!("CertificateFile={}", cert.display()))
}

/// The cluster's CA of `ca_type` with its private keys: (SSH key, TLS cert PEM, TLS key PEM).
fn ca_keys(c: &Cluster, ca_type: &str) -> (russh::keys::PrivateKey, String, String) {
    let v = c.tctl(&["get", &format!("cert_authority/{ca_type}/{}", c.opts.name), "--with-secrets", "--format=json"]).json();
    let ca: shared::resource::CertAuthority = serde_json::from_value(v[0].clone()).expect("CA");
    let ssh = shared::certs::ssh_key_from_pem(&ca.spec.active_keys.ssh[0].private_key).expect("SSH CA key");
    let tls = &ca.spec.active_keys.tls[0];
    (ssh, String::from_utf8(tls.cert.clone()).expect("pem"), String::from_utf8(tls.key.clone()).expect("pem"))
}

/// `good` re-signed by (`ssh_ca`, `tls_ca`) with a validity window of [`from`, `to`].
fn resign(
    good: &Credentials,
    ssh_ca: &russh::keys::PrivateKey,
    tls_ca: (&str, &str),
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Credentials {
    let cert = &good.ssh_cert;
    let p = SshCertParams {
        cert_type: cert.cert_type(),
        key_id: cert.key_id().to_string(),
        principals: cert.valid_principals().to_vec(),
        extensions: cert.extensions().iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        not_before: from,
        not_after: to,
    };
    let subject = russh::keys::PublicKey::from(cert.public_key().clone());
    let ssh_cert = shared::certs::sign_ssh_cert(ssh_ca, &subject, &p).expect("sign SSH");
    let der = shared::certs::first_pem_der(&good.tls_cert_pem, "CERTIFICATE").expect("der");
    let peer = shared::certs::parse_peer_cert(&der).expect("peer");
    let key = shared::certs::tls_key_from_pem(&good.tls_key_pem).expect("key");
    let tp = TlsCertParams {
        common_name: peer.common_name.clone(),
        organization: String::new(),
        sans: vec![],
        identity_json: peer.identity_json.clone(),
        client: true,
        server: false,
        not_before: from,
        not_after: to,
    };
    let tls_cert_pem = shared::certs::sign_tls_cert(tls_ca.0, tls_ca.1, &shared::certs::spki_pem(&key), &tp).expect("sign TLS");
    Credentials { ssh_cert, tls_cert_pem, ..good.clone() }
}

/// `good` with one byte of each certificate's signature flipped.
fn tamper(good: &Credentials) -> Credentials {
    let line = shared::certs::ssh_cert_line(&good.ssh_cert);
    let mut parts: Vec<String> = line.split(' ').map(String::from).collect();
    use base64::Engine;
    let mut blob = base64::engine::general_purpose::STANDARD.decode(&parts[1]).expect("b64");
    let n = blob.len();
    blob[n - 10] ^= 0x55;
    parts[1] = base64::engine::general_purpose::STANDARD.encode(&blob);
    let ssh_cert = shared::certs::parse_ssh_cert(&parts.join(" ")).expect("still parses");
    let mut der = shared::certs::first_pem_der(&good.tls_cert_pem, "CERTIFICATE").expect("der");
    let n = der.len();
    der[n - 10] ^= 0x55;
    Credentials { ssh_cert, tls_cert_pem: shared::certs::pem_encode("CERTIFICATE", &der), ..good.clone() }
}

#[test]
fn the_bad_input_catalogue_gets_clear_errors_and_changes_nothing() {
    ensure_unix_user("visitor");
    let mut o = ClusterOpts::new("catalogue.example.com");
    o.node_name = Some("cat-node".into());
    let c = Cluster::start(o);
    c.wait_node("cat-node");
    c.create("visitor.yaml", e2e::VISITOR).ok("visitor");
    c.add_user("myuser", "access", "visitor", PASSWORD);
    let mut tsh = Tsh::new("catalogue");
    tsh.login(&c, "myuser", PASSWORD).ok("login");
    let dir = c.dir.path().to_path_buf();
    let db = c.data_dir().join("backend").join("sqlite.db");
    let tok = c.trusted_cluster_token("1h");
    let profile = dir.join("good.identity");
    c.tctl(&["auth", "sign", "--user=myuser", "--ttl=1h", &format!("--out={}", profile.display())]).ok("auth sign");
    let good = read_identity_file(&profile).expect("identity");

    // Forged and broken credentials.
    let now = OffsetDateTime::now_utc();
    let (ssh_ca, tls_ca_cert, tls_ca_key) = ca_keys(&c, "user");
    let foreign_ssh = shared::certs::new_ssh_key().expect("key");
    let foreign_tls_key = shared::certs::new_tls_key().expect("key");
    let foreign_tls_ca = shared::certs::new_ca_cert(&foreign_tls_key, &c.opts.name, "user", now, Duration::from_secs(3600)).expect("CA");
    let hour = time::Duration::hours(1);
    let variants: Vec<(&str, Credentials)> = vec![
        ("expired", resign(&good, &ssh_ca, (&tls_ca_cert, &tls_ca_key), now - hour * 2, now - hour)),
        ("not-yet-valid", resign(&good, &ssh_ca, (&tls_ca_cert, &tls_ca_key), now + hour, now + hour * 2)),
        ("foreign", resign(&good, &foreign_ssh, (&foreign_tls_ca, &foreign_tls_key.serialize_pem()), now - hour, now + hour)),
        ("tampered", tamper(&good)),
    ];
    let mut files: Vec<(&str, PathBuf, (String, String))> = Vec::new();
    for (tag, creds) in &variants {
        let id = dir.join(format!("{tag}.identity"));
        write_identity_file(&id, creds).expect("identity");
        files.push((tag, id, openssh_files(&dir, tag, creds)));
    }
    let (good_key, good_cert) = openssh_files(&dir, "good", &good);

    let yaml = |file: &str, text: &str| {
        let p = dir.join(file);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    };
    let role = |spec: &str| format!("kind: role\nversion: v5\nmetadata:\n  name: r\nspec:\n{spec}");
    let tc = |spec: &str| format!("kind: trusted_cluster\nversion: v2\nmetadata:\n  name: root\nspec:\n{spec}");
    let tctl = |args: Vec<String>| {
        let c = &c;
        move || c.tctl(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let create = |file: &str, text: &str| tctl(vec!["create".into(), yaml(file, text)]);
    let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
    let b64 = |v: &serde_json::Value| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(v.to_string())
    };
    let own_host_ca = b64(&c.tctl(&["get", &format!("cert_authority/host/{}", c.opts.name), "--format=json"]).json()[0]);
    let own_user_ca = b64(&c.tctl(&["get", &format!("cert_authority/user/{}", c.opts.name), "--format=json"]).json()[0]);
    let validate = |n: u8, body: String| {
        let c = &c;
        move || http(c, "POST", "/webapi/trustedclusters/validate", body.as_bytes(), &format!("127.0.0.{}", 100 + n))
    };
    let vbody = |cas: Vec<&str>| {
        serde_json::json!({"token": tok, "certificate_authorities": cas, "teleport_version": env!("CARGO_PKG_VERSION")}).to_string()
    };
    let subsystem = |sub: String| {
        let (k, cert, ip) = (good_key.clone(), good_cert.clone(), c.ip.clone());
        move || {
            let dest = format!("myuser@{ip}");
            openssh(&["-i", &k, "-o", &cert, "-p", "3080", &dest, "-s", sub.as_str()])
        }
    };

    let mut cases: Vec<Case> = vec![
        // Resource YAML.
        case("malformed YAML", Expect::Error("malformed.yaml:"), create("malformed.yaml", "kind: role\nmetadata:\n  name: [oops\n")),
        case(
            "unknown kind",
            Expect::Error("unknown resource kind \"rolez\""),
            create("k.yaml", "kind: rolez\nversion: v5\nmetadata: {name: x}\n"),
        ),
        case("kind is a number", Expect::Error("field \"kind\" must be a string"), create("k7.yaml", "kind: 7\n")),
        case("wrong type", Expect::Error("field spec.allow.logins: invalid type"), create("t.yaml", &role("  allow: {logins: root}\n"))),
        case(
            "unknown version",
            Expect::Error("unrecognized role version: v99"),
            create("v.yaml", "kind: role\nversion: v99\nmetadata: {name: x}\n"),
        ),
        case("missing name", Expect::Error("missing field `name`"), create("n.yaml", "kind: role\nversion: v5\nmetadata: {}\n")),
        case("name with a slash", Expect::Error("contains a '/'"), create("s.yaml", "kind: role\nversion: v5\nmetadata: {name: ../etc}\n")),
        case(
            "name with a NUL",
            Expect::Error("control character"),
            create("nul.yaml", "kind: role\nversion: v5\nmetadata: {name: \"a\\0b\"}\n"),
        ),
        case(
            "typo in a field",
            Expect::Error("unknown field `node_lables`"),
            create("typo.yaml", &role("  allow: {node_lables: {a: b}}\n")),
        ),
        case(
            "wildcard login",
            Expect::Error("wildcard matcher is not allowed in logins"),
            create("w.yaml", &role("  allow: {logins: ['*']}\n")),
        ),
        case(
            "invalid label regex",
            Expect::Error("invalid label value"),
            create("re.yaml", &role("  allow: {node_labels: {env: '^(prod$'}}\n")),
        ),
        case(
            "invalid cluster_labels regex",
            Expect::Error("invalid label value"),
            create("cre.yaml", &role("  allow: {cluster_labels: {env: '^[a-$'}}\n")),
        ),
        case(
            "broken template",
            Expect::Error("template brackets"),
            create("tpl.yaml", &role("  allow: {logins: ['{{internal.logins']}\n")),
        ),
        case(
            "unsupported template variable",
            Expect::Error("unsupported variable"),
            create("var.yaml", &role("  allow: {logins: ['{{internal.nosuch}}']}\n")),
        ),
        case("bad duration", Expect::Error("max_session_ttl"), create("ttl.yaml", &role("  options: {max_session_ttl: forever}\n"))),
        case(
            "role_map local wildcard",
            Expect::Error("wildcard value is not supported for 'local' property"),
            create("rm1.yaml", &tc("  enabled: true\n  token: t\n  web_proxy_addr: 'r:3080'\n  role_map: [{remote: a, local: ['*']}]\n")),
        ),
        case(
            "role_map invalid regex",
            Expect::Error("failed to parse 'remote' parameter for role_map"),
            create(
                "rm2.yaml",
                &tc("  enabled: true\n  token: t\n  web_proxy_addr: 'r:3080'\n  role_map: [{remote: '^(x$', local: [a]}]\n"),
            ),
        ),
        case(
            "role_map duplicate remote",
            Expect::Error("remote role 'a' match is already specified"),
            create(
                "rm3.yaml",
                &tc(
                    "  enabled: true\n  token: t\n  web_proxy_addr: 'r:3080'\n  role_map: [{remote: a, local: [x]}, {remote: a, local: [y]}]\n",
                ),
            ),
        ),
        case(
            "missing role_map",
            Expect::Error("missing 'role_map' parameter"),
            create("rm4.yaml", &tc("  enabled: true\n  token: t\n  web_proxy_addr: 'r:3080'\n")),
        ),
        case(
            "bad proxy address",
            Expect::Error("web_proxy_addr"),
            create(
                "addr.yaml",
                &tc("  enabled: true\n  token: t\n  web_proxy_addr: 'r:notaport'\n  role_map: [{remote: a, local: [b]}]\n"),
            ),
        ),
        case(
            "second document bad",
            Expect::Error("document 2 (line 5)"),
            create(
                "two.yaml",
                "kind: role\nversion: v5\nmetadata: {name: fine}\n---\nkind: role\nversion: v5\nmetadata: {name: bad}\nspec: {allow: {logins: 7}}\n",
            ),
        ),
        case(
            "the same resource twice",
            Expect::Error("documents 1 and 2 both define role \"twice\""),
            create("dup.yaml", "kind: role\nversion: v5\nmetadata: {name: twice}\n---\nkind: role\nversion: v5\nmetadata: {name: twice}\n"),
        ),
        case(
            "one new, one existing",
            Expect::Error("role \"visitor\" already exists; nothing was created"),
            create(
                "exists.yaml",
                "kind: role\nversion: v5\nmetadata: {name: brand-new}\n---\nkind: role\nversion: v5\nmetadata: {name: visitor}\n",
            ),
        ),
        case("existing without -f", Expect::Error("role \"visitor\" already exists"), create("visitor2.yaml", e2e::VISITOR)),
        case(
            "duplicate keys",
            Expect::Error("duplicate entry with key \"name\""),
            create("dupkey.yaml", "kind: role\nversion: v5\nmetadata:\n  name: a\n  name: b\n"),
        ),
        case(
            "YAML tag",
            Expect::Error("YAML tags such as !tag are not supported"),
            create("tag.yaml", "kind: role\nversion: v5\nmetadata: {name: !foo x}\n"),
        ),
        case("alias bomb", Expect::Error("repetition limit exceeded"), create("bomb.yaml", &alias_bomb())),
        case(
            "deep nesting",
            Expect::Error("recursion limit exceeded"),
            create("deep.yaml", &format!("kind: role\nspec: {}{}\n", "[".repeat(5000), "]".repeat(5000))),
        ),
        case(
            "remote_cluster by hand",
            Expect::Error("creating resources of type \"remote_cluster\" is not supported"),
            create("rc.yaml", "kind: remote_cluster\nversion: v3\nmetadata: {name: x}\n"),
        ),
        case(
            "cert_authority by hand",
            Expect::Error("creating resources of type \"cert_authority\" is not supported"),
            create("ca.yaml", "kind: cert_authority\nversion: v2\nmetadata: {name: x}\nspec: {type: host, cluster_name: x}\n"),
        ),
        // Resources too large to keep (a role with 100,000 labels took the daemon from 34 to 255 MB).
        case("100,000 labels", Expect::Error("the resource has more than 10000 fields and list items"), {
            let labels: String = (0..100_000).map(|i| format!("    k{i}: v\n")).collect();
            create("labels.yaml", &format!("kind: role\nversion: v7\nmetadata:\n  name: many\n  labels:\n{labels}"))
        }),
        case("300 labels", Expect::Error("role has 300 labels; the limit is 256"), {
            let labels: String = (0..300).map(|i| format!("    k{i}: v\n")).collect();
            create("labels300.yaml", &format!("kind: role\nversion: v7\nmetadata:\n  name: many\n  labels:\n{labels}"))
        }),
        case(
            "a long description",
            Expect::Error("metadata.description is longer than 4096 bytes"),
            create("desc.yaml", &format!("kind: role\nversion: v7\nmetadata:\n  name: wordy\n  description: {}\n", "d".repeat(5000))),
        ),
        case("300 rules", Expect::Error("allow.rules has 300 rules; the limit is 256"), {
            let rules: String = (0..300).map(|_| "    - resources: [role]\n      verbs: [list]\n").collect();
            create("rules.yaml", &format!("kind: role\nversion: v7\nmetadata:\n  name: rules\nspec:\n  allow:\n    rules:\n{rules}"))
        }),
        case("a 700 KiB role", Expect::Error("the limit is 512 KiB"), {
            let logins: String = (0..1000).map(|i| format!("    - l{i}{}\n", "x".repeat(700))).collect();
            create("big.yaml", &format!("kind: role\nversion: v7\nmetadata:\n  name: big\nspec:\n  allow:\n    logins:\n{logins}"))
        }),
        case("empty file", Expect::Error("no resources found"), create("empty.yaml", "# nothing\n")),
        case("a list", Expect::Error("not a mapping"), create("list.yaml", "- a\n- b\n")),
        case("invalid UTF-8", Expect::Error("not valid UTF-8"), {
            let p = dir.join("binary.yaml");
            std::fs::write(&p, b"kind: role\nmetadata: {name: \xff\xfe}\n").expect("write");
            tctl(vec!["create".into(), p.display().to_string()])
        }),
        case("huge file", Expect::Error("limited to"), {
            let p = dir.join("huge.yaml");
            std::fs::write(&p, vec![b'#'; 5 * 1024 * 1024]).expect("write");
            tctl(vec!["create".into(), p.display().to_string()])
        }),
        case("a directory", Expect::Error("is a directory"), tctl(vec!["create".into(), dir.display().to_string()])),
        case("missing file", Expect::Error("cannot read /nonexistent.yaml"), tctl(args("create /nonexistent.yaml"))),
        // Names that pass for others.
        case(
            "role name with a trailing space",
            Expect::Error("role name \"access \" ends with white space (U+0020 at position 7); remove it"),
            create("sp.yaml", "kind: role\nversion: v5\nmetadata: {name: \"access \"}\n"),
        ),
        case(
            "role name .",
            Expect::Error("role name \".\" is not a valid name"),
            create("dot.yaml", "kind: role\nversion: v5\nmetadata: {name: \".\"}\n"),
        ),
        case(
            "role name ..",
            Expect::Error("role name \"..\" is not a valid name"),
            create("dotdot.yaml", "kind: role\nversion: v5\nmetadata: {name: \"..\"}\n"),
        ),
        case(
            "role name with a right-to-left override",
            Expect::Error("invisible formatting character U+202E at position 4"),
            create("bidi.yaml", "kind: role\nversion: v5\nmetadata: {name: \"acc\\u202Ess\"}\n"),
        ),
        case(
            "role name admіn with a Cyrillic і",
            Expect::Error("'і' (U+0456) at position 4 is Cyrillic, the rest is Latin"),
            create("cyr.yaml", "kind: role\nversion: v5\nmetadata: {name: \"adm\\u0456n\"}\n"),
        ),
        case(
            "user аlice with a Cyrillic а",
            Expect::Error("user name \"аlice\" mixes scripts: 'а' (U+0430) at position 1 is Cyrillic"),
            tctl(vec!["users".into(), "add".into(), "\u{0430}lice".into(), "--roles=access".into()]),
        ),
        case(
            "lock without a target",
            Expect::Error("a lock needs a target"),
            create("lock.yaml", "kind: lock\nversion: v2\nmetadata: {name: l1}\nspec: {target: {}, message: x}\n"),
        ),
        case("tctl lock without a target", Expect::Error("say what to lock: --user, --role"), tctl(args("lock --message=x"))),
        case(
            "tctl lock --ttl and --expires",
            Expect::Error("use only one of --expires and --ttl"),
            tctl(args("lock --user=x --ttl=1h --expires=2030-01-01T00:00:00Z")),
        ),
        case("tctl rm an unknown lock", Expect::Error("lock \"nope\" is not found"), tctl(args("rm lock/nope"))),
        // tctl and tsh arguments.
        case("unknown subcommand", Expect::Usage("unrecognized subcommand"), tctl(args("frobnicate"))),
        case("unknown format", Expect::Usage("unsupported format \"xml\""), tctl(args("get roles --format=xml"))),
        case("get unknown kind", Expect::Error("unknown resource kind"), tctl(args("get nosuchkind"))),
        case("rm without a name", Expect::Error("provide a full resource name"), tctl(args("rm role/"))),
        case("rm unknown", Expect::Error("role \"nosuch\" is not found"), tctl(args("rm role/nosuch"))),
        case("rm unknown rc", Expect::Error("remote cluster \"nope\" is not found"), tctl(args("rm rc/nope"))),
        case("rm unknown tc", Expect::Error("trusted cluster \"nope\" is not found"), tctl(args("rm tc/nope"))),
        case("token type", Expect::Error("unknown token type \"wizard\""), tctl(args("tokens add --type=wizard"))),
        case("token ttl", Expect::Error("invalid duration"), tctl(args("tokens add --type=node --ttl=forever"))),
        case("negative ttl", Expect::Error("invalid duration \"-5m\""), tctl(args("tokens add --type=node --ttl=-5m"))),
        case("rm unknown token", Expect::Error("is not found"), tctl(args("tokens rm nosuchtoken"))),
        case(
            "update a role",
            Expect::Error("updating resources of type \"role\" is not supported"),
            tctl(args("update role/visitor --set-labels=a=b")),
        ),
        case("update without flags", Expect::Error("use at least one of --set-labels or --set-ttl"), tctl(args("update rc/nope"))),
        case("label without =", Expect::Error("expected key=value"), tctl(args("update rc/x --set-labels=noequals"))),
        case(
            "user name",
            Expect::Error("invalid user name"),
            tctl(vec!["users".into(), "add".into(), "x y".into(), "--roles=access".into()]),
        ),
        case(
            "user with unknown role",
            Expect::Error("role \"nosuchrole\" is not found"),
            tctl(args("users add newbie --roles=nosuchrole")),
        ),
        case("existing user", Expect::Error("user \"myuser\" already exists"), tctl(args("users add myuser --roles=access"))),
        case("rm unknown user", Expect::Error("user \"nosuchuser\" is not found"), tctl(args("users rm nosuchuser"))),
        case(
            "sign for unknown user",
            Expect::Error("user \"nosuch\" is not found"),
            tctl(vec!["auth".into(), "sign".into(), "--user=nosuch".into(), format!("--out={}/x.id", dir.display())]),
        ),
        case("tsh bad destination", Expect::Error("invalid destination \"visitor@\""), || tsh.run(&["ssh", "visitor@", "true"])),
        case("tsh unknown cluster", Expect::Error("not found"), || tsh.run(&["ls", "--cluster=../../etc"])),
        case("tsh unknown flag", Expect::Usage("unexpected argument '--frob'"), || tsh.run(&["ls", "--frob"])),
        // The benchmark-only transport overrides refuse what they cannot use, before connecting.
        case("tsh bad window override", Expect::Error("TELEPORT_UNSTABLE_SSH_WINDOW=\"big\" is not a window size"), || {
            let home = tsh.home.path().display().to_string();
            let env = [("TELEPORT_HOME", home.as_str()), ("TELEPORT_UNSTABLE_SSH_WINDOW", "big")];
            run(&e2e::bin("tsh"), &["ssh", "visitor@cat-node", "true"], &env, None, Duration::from_secs(30))
        }),
        case("tctl bad nodelay override", Expect::Error("TELEPORT_UNSTABLE_TCP_NODELAY=\"yes\" is not understood"), || {
            c.tctl_env(&["get", "roles"], &[("TELEPORT_UNSTABLE_TCP_NODELAY", "yes")], None)
        }),
        // REST bodies.
        case("validate: garbage", Expect::Http(400, "invalid request body"), validate(1, "garbage".into())),
        case(
            "validate: wrong token",
            Expect::Http(403, "the cluster token has been rejected"),
            validate(2, vbody(vec![]).replace(&tok, "0123456789abcdef")),
        ),
        case("validate: no CA", Expect::Http(403, "the cluster token has been rejected"), validate(3, vbody(vec![]))),
        case(
            "validate: three CAs",
            Expect::Http(403, "the cluster token has been rejected"),
            validate(4, vbody(vec![&own_host_ca, &own_host_ca, &own_host_ca])),
        ),
        case("validate: a user CA", Expect::Http(403, "the cluster token has been rejected"), validate(5, vbody(vec![&own_user_ca]))),
        case("validate: not base64", Expect::Http(403, "the cluster token has been rejected"), validate(6, vbody(vec!["!!!"]))),
        case(
            "validate: oversized CA",
            Expect::Http(403, "the cluster token has been rejected"),
            validate(7, vbody(vec![&"A".repeat(70_000)])),
        ),
        case("validate: its own name", Expect::Http(403, "the cluster token has been rejected"), validate(8, vbody(vec![&own_host_ca]))),
        case(
            "validate: ancient leaf",
            Expect::Http(400, "more than one major version behind"),
            validate(9, vbody(vec![&own_host_ca]).replace(env!("CARGO_PKG_VERSION"), "1.0.0")),
        ),
        case(
            "validate: oversized body",
            Expect::Http(400, "request body too large"),
            validate(10, format!("{{\"token\":\"{}\"}}", "a".repeat(7 * 1024 * 1024))),
        ),
        case(
            "validate: wrong types",
            Expect::Http(400, "invalid request body"),
            validate(11, "{\"token\": 5, \"certificate_authorities\": {}}".into()),
        ),
        case("set password: garbage", Expect::Http(400, "invalid request body"), || {
            http(&c, "PUT", "/webapi/users/password/token", b"{", "127.0.0.120")
        }),
        case("set password: unknown token", Expect::Http(404, "has expired or was already used"), || {
            http(&c, "PUT", "/webapi/users/password/token", br#"{"token":"abcdef","password":"long-enough-pass"}"#, "127.0.0.121")
        }),
        case("login: wrong type", Expect::Http(400, "invalid request body"), || {
            http(&c, "POST", "/v1/auth/login", br#"{"user": 5}"#, "127.0.0.122")
        }),
        case("unknown endpoint", Expect::Http(404, "no such endpoint"), || http(&c, "GET", "/v1/nosuch", b"", "127.0.0.123")),
        case("API without a certificate", Expect::Http(403, "needs a client certificate"), || {
            http(&c, "GET", "/v1/resources/role", b"", "127.0.0.124")
        }),
        // SSH subsystem requests to the proxy, from stock OpenSSH with a valid certificate.
        case(
            "subsystem: not proxy",
            Expect::Refused { stderr: "subsystem request failed", log: "invalid format for proxy request" },
            subsystem("sftp".into()),
        ),
        case(
            "subsystem: empty",
            Expect::Refused { stderr: "subsystem request failed", log: "invalid format for proxy request" },
            subsystem("proxy:".into()),
        ),
        case(
            "subsystem: port out of range",
            Expect::Refused { stderr: "subsystem request failed", log: "invalid format for proxy request" },
            subsystem("proxy:cat-node:99999".into()),
        ),
        case(
            "subsystem: too many @",
            Expect::Refused { stderr: "subsystem request failed", log: "invalid format for proxy request" },
            subsystem("proxy:a@b@c@d".into()),
        ),
        case(
            "subsystem: namespace",
            Expect::Refused { stderr: "subsystem request failed", log: "namespace \"evil\" is not supported" },
            subsystem("proxy:cat-node:3022@evil@x".into()),
        ),
        case(
            "subsystem: brackets",
            Expect::Refused { stderr: "subsystem request failed", log: "invalid format for proxy request" },
            subsystem("proxy:[[x]:2".into()),
        ),
        case(
            "subsystem: huge",
            Expect::Refused { stderr: "subsystem request failed", log: "invalid format for proxy request" },
            subsystem(format!("proxy:{}:22", "h".repeat(5000))),
        ),
        case(
            "subsystem: unknown node",
            Expect::Refused { stderr: "subsystem request failed", log: "not found" },
            subsystem("proxy:nosuchnode:3022".into()),
        ),
        case(
            "subsystem: unknown cluster",
            Expect::Refused { stderr: "subsystem request failed", log: "not found" },
            subsystem("proxy:cat-node:3022@nosuch.example.com".into()),
        ),
        case(
            "subsystem: unregistered address",
            Expect::Refused { stderr: "subsystem request failed", log: "not found" },
            subsystem("proxy:127.0.0.1:22".into()),
        ),
    ];

    // Certificates: each broken identity at the API (tctl, and curl skipping tctl's own expiry
    // check), at the proxy (stock ssh) and at the node directly (stock ssh).
    for (tag, id, (key, cert)) in &files {
        let needle = match *tag {
            "expired" => "has expired",
            "not-yet-valid" => "is not valid yet",
            _ => "refused our client certificate (TLS alert",
        };
        let idp = id.display().to_string();
        cases.push(case(
            format!("{tag} certificate: tctl"),
            Expect::Error(needle),
            tctl(vec!["-i".into(), idp.clone(), format!("--auth-server={}", c.web), "get".into(), "roles".into()]),
        ));
        // tsh checks expiry itself; what it does not catch, the API refuses at the TLS layer.
        let api_log = match *tag {
            "expired" | "not-yet-valid" => "",
            _ => "refused a client certificate",
        };
        let tsh_says = if *tag == "expired" { "have expired; run 'tsh login' again" } else { "refused our client certificate (TLS alert" };
        cases.push(case(format!("{tag} certificate: tsh ls"), Expect::Refused { stderr: tsh_says, log: api_log }, {
            let (tsh, idp, web) = (&tsh, idp.clone(), c.web.clone());
            move || tsh.run(&["-i", &idp, "--proxy", &web, "ls"])
        }));
        let (k, ce, ip) = (key.clone(), cert.clone(), c.ip.clone());
        let log_reason = match *tag {
            "expired" | "not-yet-valid" => "Certificate is expired or not yet valid",
            "tampered" => "Certificate signature is invalid",
            _ => "the certificate signed by untrusted CA",
        };
        if *tag == "tampered" {
            // Stock OpenSSH checks a certificate's signature when it loads it and never sends a
            // tampered one; tsh (russh) sends what the identity file holds.
            let (tsh, idp, web) = (&tsh, idp.clone(), c.web.clone());
            cases.push(case(
                "tampered certificate: proxy (tsh -i)",
                Expect::Refused { stderr: "refused your certificate", log: log_reason },
                move || tsh.run(&["-i", &idp, "--proxy", &web, "ssh", "visitor@cat-node", "true"]),
            ));
            continue;
        }
        cases.push(case(format!("{tag} certificate: proxy"), Expect::Refused { stderr: "Permission denied", log: log_reason }, {
            let (k, ce, ip) = (k.clone(), ce.clone(), ip.clone());
            move || {
                let dest = format!("myuser@{ip}");
                openssh(&["-i", &k, "-o", &ce, "-p", "3080", &dest, "-s", "proxy:cat-node:3022"])
            }
        }));
        cases.push(case(format!("{tag} certificate: node"), Expect::Refused { stderr: "Permission denied", log: log_reason }, move || {
            let dest = format!("visitor@{ip}");
            openssh(&["-i", &k, "-o", &ce, "-p", "3022", &dest, "true"])
        }));
    }

    assert!(cases.len() >= 50, "the catalogue has {} cases", cases.len());
    let before = dump(&db);
    for case in &cases {
        let log_before = c.log().len();
        let out = (case.run)();
        let what = &case.what;
        match &case.expect {
            Expect::Error(needle) => {
                out.fails_with(what, needle);
                assert_eq!(out.stderr.trim_end().lines().count(), 1, "{what}: one line:\n{}", out.stderr);
            }
            Expect::Usage(needle) => {
                assert_eq!(out.code, 2, "{what}: usage errors exit 2: {out:?}");
                assert!(out.stderr.contains(needle), "{what}: {needle:?} in\n{}", out.stderr);
            }
            Expect::Http(status, needle) => {
                assert_eq!(out.code, i32::from(*status), "{what}: {out:?}");
                let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {out:?}"));
                let msg = v["error"]["message"].as_str().unwrap_or_default();
                assert!(msg.contains(needle), "{what}: {needle:?} in {msg:?}");
            }
            Expect::Refused { stderr, log } => {
                assert_ne!(out.code, 0, "{what}: must fail: {out:?}");
                assert!(out.stderr.contains(stderr), "{what}: {stderr:?} in\n{}", out.stderr);
                let new_log = &c.log()[log_before..];
                assert!(new_log.contains(log), "{what}: {log:?} in the daemon log:\n{new_log}");
            }
        }
        assert!(!out.stderr.contains("panicked") && !out.stdout.contains("panicked"), "{what}: {out:?}");
        assert_eq!(dump(&db), before, "{what}: the stored state changed");
    }
    assert!(!c.log().contains("panicked"), "the daemon panicked:\n{}", c.log());
    // Still healthy: the good credentials work.
    let out = tsh.run(&["ssh", "visitor@cat-node", "echo still-fine"]);
    assert_eq!(out.ok("after the catalogue"), "still-fine\n");
    eprintln!("catalogue: {} bad inputs, each refused with a clear error, state unchanged", cases.len());
}

/// A "billion laughs" document: nine levels of aliases, each nine times the last.
fn alias_bomb() -> String {
    let mut s = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        s.push_str(&format!("{}: &{} [{}]\n", w[1], w[1], vec![format!("*{}", w[0]); 9].join(", ")));
    }
    s.push_str("kind: role\n");
    s
}
