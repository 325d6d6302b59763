//! What a caller without credentials can make a cluster spend, and what it cannot make it do:
//! the audit log's size, memory and CPU under a sign-in flood, a sign-in from a foreign page.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::*;

/// curl against `c`'s web port from `source` (a 127.x address); returns (status, headers, body).
fn curl_from(c: &Cluster, source: &str, method: &str, path: &str, headers: &[&str], body: Option<&Path>) -> (u16, String, String) {
    let dir = TempDir::new("anon-curl");
    let (h, b) = (dir.path().join("h"), dir.path().join("b"));
    let out = curl_cmd(c, source, method, path, headers, body, &h, &b).output().expect("curl");
    let status = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
    (status, std::fs::read_to_string(&h).unwrap_or_default(), std::fs::read_to_string(&b).unwrap_or_default())
}

#[allow(clippy::too_many_arguments)]
fn curl_cmd(c: &Cluster, source: &str, method: &str, path: &str, headers: &[&str], body: Option<&Path>, h: &Path, b: &Path) -> Command {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--max-time", "60", "--interface", source, "-X", method, "--cacert"]).arg(c.web_ca());
    cmd.arg("-D").arg(h).arg("-o").arg(b).args(["-w", "%{http_code}"]);
    for x in headers {
        cmd.args(["-H", x]);
    }
    if let Some(p) = body {
        cmd.arg("--data-binary").arg(format!("@{}", p.display()));
    }
    cmd.arg(format!("https://{}{path}", c.web));
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    cmd
}

fn events_log_size(c: &Cluster) -> u64 {
    std::fs::metadata(c.data_dir().join("log").join("events.log")).map(|m| m.len()).unwrap_or(0)
}

const JSON: &str = "Content-Type: application/json";

#[test]
fn oversized_names_and_connector_paths_cost_the_audit_log_a_bounded_size() {
    let c = Cluster::start(ClusterOpts::new("anon-audit.example.com"));
    c.add_user("alice", "access", "", PASSWORD);
    let dir = TempDir::new("anon-audit");
    let body = dir.path().join("big.json");
    let name = "n".repeat(5 << 20);
    std::fs::write(&body, serde_json::json!({"user": name, "pass": "wrong-password"}).to_string()).expect("body");
    let before = events_log_size(&c);
    let attacker = free_ip(&[]);
    let mut codes = std::collections::BTreeMap::new();
    for _ in 0..40 {
        let (status, _, _) = curl_from(&c, &attacker, "POST", "/v1/webapi/sessions/web", &[JSON], Some(&body));
        *codes.entry(status).or_insert(0) += 1;
    }
    let after_names = events_log_size(&c);
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "SAMLResponse=x").expect("form");
    let connector = "c".repeat(4000);
    let t = Instant::now();
    let mut acs = std::collections::BTreeMap::new();
    for _ in 0..500 {
        let (status, _, _) = curl_from(&c, &attacker, "POST", &format!("/webapi/saml/acs/{connector}"), &[], Some(&empty));
        *acs.entry(status).or_insert(0) += 1;
    }
    let acs_took = t.elapsed();
    // The pages an SSO sign-in ends on carry the same security headers as every other page,
    // and no page may open a socket to another host.
    let (_, h, _) = curl_from(&c, &free_ip(&[]), "POST", "/webapi/saml/acs/x", &[], Some(&empty));
    let h = h.to_ascii_lowercase();
    for header in ["content-security-policy: default-src 'self'", "x-frame-options: sameorigin", "x-content-type-options: nosniff"] {
        assert!(h.contains(header), "{header} on an SSO error page: {h}");
    }
    assert!(h.contains("connect-src 'self';") && !h.contains("wss:"), "{h}");
    let after_acs = events_log_size(&c);
    let (names_bytes, acs_bytes) = (after_names - before, after_acs - after_names);
    eprintln!(
        "audit: 40 sign-ins with 5 MiB names from one address ({codes:?}) wrote {names_bytes} bytes; \
         500 ACS posts with a 4,000-character connector in {acs_took:?} ({acs:?}) wrote {acs_bytes} bytes"
    );
    // The failed sign-ins are audited, each with the name clipped.
    let failed: Vec<serde_json::Value> =
        c.events().into_iter().filter(|e| e["event"] == "user.login" && e["success"] == false && e["method"] == "local").collect();
    assert!(!failed.is_empty(), "failed sign-ins are audited");
    for e in &failed {
        let user = e["user"].as_str().unwrap_or_default();
        assert!(user.len() < 300 && user.ends_with(&format!("…[{} bytes]", 5 << 20)), "clipped: {}", &user[..user.len().min(300)]);
    }
    assert!(names_bytes < 40 * 1024, "40 oversized sign-ins wrote {names_bytes} bytes");
    assert_eq!(codes.get(&429).copied().unwrap_or(0) + codes.get(&400).copied().unwrap_or(0), 40, "{codes:?}");
    // The ACS is rate-limited per address (a burst of 30, then 5 a second), and what it audits
    // is clipped: each admitted post costs the log at most a kilobyte.
    let admitted = acs.get(&400).copied().unwrap_or(0) as f64;
    assert!(admitted <= 30.0 + 5.0 * acs_took.as_secs_f64().ceil() + 5.0, "{acs:?} in {acs_took:?}");
    assert!(acs_bytes as f64 <= admitted * 1024.0, "{admitted} ACS posts wrote {acs_bytes} bytes");
    for e in c.events().into_iter().filter(|e| e["method"] == "saml") {
        assert!(e.to_string().len() < 2048, "{e}");
    }
    // Every event, whatever wrote it, fits the limit; and the API still lists them quickly.
    let events = c.tctl(&["get", "events", "--format=json"]);
    assert!(events.ok("tctl get events").len() < 1 << 20, "{} bytes", events.stdout.len());
}

/// Peak resident memory of `pid` since the last reset, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

fn reset_peak_rss(pid: u32) {
    // "5" resets the peak resident set size (Linux 4.0+).
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("clear_refs");
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0) + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

#[test]
fn concurrent_wrong_logins_cannot_take_the_memory_or_the_cores() {
    let c = Cluster::start(ClusterOpts::new("anon-hash.example.com"));
    c.add_user("alice", "access", "", PASSWORD);
    let pid = c.pid().expect("pid");
    let dir = TempDir::new("anon-hash");
    let addrs: Vec<String> = (0..4).map(|_| free_ip(&[])).collect();
    std::thread::sleep(Duration::from_millis(500));
    reset_peak_rss(pid);
    let base = peak_rss_kib(pid);
    let cpu0 = cpu_ticks(pid);
    let t = Instant::now();
    // 120 at once, 30 from each of four addresses (within each address's burst): half for a
    // real user with a wrong password, half for users that do not exist.
    let mut children: Vec<(Child, std::path::PathBuf)> = Vec::new();
    for i in 0..120 {
        let user = if i % 2 == 0 { "alice".to_string() } else { format!("nobody{i}") };
        let body = dir.path().join(format!("b{i}.json"));
        std::fs::write(&body, serde_json::json!({"user": user, "pass": format!("wrong-password-{i}")}).to_string()).expect("body");
        let (h, b) = (dir.path().join(format!("h{i}")), dir.path().join(format!("o{i}")));
        let child = curl_cmd(&c, &addrs[i % 4], "POST", "/v1/webapi/sessions/web", &[JSON], Some(&body), &h, &b).spawn().expect("curl");
        children.push((child, b));
    }
    let mut codes = std::collections::BTreeMap::new();
    for (child, _) in children {
        let out = child.wait_with_output().expect("curl");
        let status: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
        *codes.entry(status).or_insert(0) += 1;
    }
    let took = t.elapsed();
    let peak = peak_rss_kib(pid);
    let cpu = cpu_ticks(pid) - cpu0;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let share = cpu as f64 / ticks / took.as_secs_f64() / cores;
    eprintln!(
        "hashing: 120 concurrent wrong sign-ins from 4 addresses in {took:?}: {codes:?}; peak RSS {:.1} MiB over a {:.1} MiB base; \
         CPU {:.0} % of all cores while they ran",
        (peak - base) as f64 / 1024.0,
        base as f64 / 1024.0,
        share * 100.0
    );
    assert_eq!(codes.keys().copied().filter(|k| *k != 403 && *k != 429).count(), 0, "only refusals, never a failure: {codes:?}");
    assert!(codes.get(&429).copied().unwrap_or(0) > 0, "beyond the gate callers are told the server is busy: {codes:?}");
    assert!(peak - base < 96 * 1024, "peak RSS grew by {} KiB", peak - base);
    // At most half the cores hash at once (one of two here); the rest of the process stays light.
    assert!(share < 0.75, "the sign-in flood took {:.0} % of all cores", share * 100.0);
    // A real user signs in from elsewhere once the flood is over.
    let mut tsh = Tsh::new("anon-hash");
    tsh.login(&c, "alice", PASSWORD).ok("a real sign-in after the flood");
}

#[test]
fn a_foreign_page_cannot_sign_the_browser_in() {
    let c = Cluster::start(ClusterOpts::new("anon-csrf.example.com"));
    c.add_user("attacker", "access", "", PASSWORD);
    let dir = TempDir::new("anon-csrf");
    let body = dir.path().join("b.json");
    std::fs::write(&body, serde_json::json!({"user": "attacker", "pass": PASSWORD}).to_string()).expect("body");
    let me = "127.0.0.1";
    // What a form or a no-preflight fetch from another site can send: text/plain, a foreign Origin.
    for (headers, want) in [
        (vec!["Content-Type: text/plain", "Origin: https://evil.example"], 400),
        (vec!["Content-Type: application/x-www-form-urlencoded", "Origin: https://evil.example"], 400),
        (vec!["Content-Type: text/plain"], 400),
        (vec![JSON, "Origin: https://evil.example"], 403),
        (vec![JSON, "Sec-Fetch-Site: cross-site"], 403),
    ] {
        let (status, h, b) = curl_from(&c, me, "POST", "/v1/webapi/sessions/web", &headers, Some(&body));
        assert_eq!(status, want, "{headers:?}: {b}");
        assert!(!h.to_ascii_lowercase().contains("set-cookie"), "no session for {headers:?}: {h}");
    }
    // The site's own pages and scripts still sign in.
    let origin = format!("Origin: https://{}", c.web);
    let (status, h, b) = curl_from(&c, me, "POST", "/v1/webapi/sessions/web", &[JSON, &origin], Some(&body));
    assert_eq!(status, 200, "{b}");
    assert!(h.contains("__Host-session="), "{h}");
    // The session's id (the cookie) is stored nowhere: only its hash names the record.
    let id = h.split("__Host-session=").nth(1).and_then(|r| r.split(';').next()).unwrap_or_default().to_string();
    assert_eq!(id.len(), 64, "{h}");
    let conn =
        rusqlite::Connection::open_with_flags(c.data_dir().join("backend").join("sqlite.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("database");
    let mut rows = conn.prepare("SELECT key, value FROM kv WHERE key LIKE 'websessions/%'").expect("select");
    let stored: Vec<(String, Vec<u8>)> = rows.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("rows").filter_map(|r| r.ok()).collect();
    assert_eq!(stored.len(), 1);
    for (k, v) in &stored {
        assert!(!k.contains(&id) && !String::from_utf8_lossy(v).contains(&id), "the cookie is in the store: {k}");
    }
    let (status, _, b) = curl_from(&c, me, "POST", "/v1/webapi/sessions/web", &[JSON], Some(&body));
    assert_eq!(status, 200, "scripts without an Origin: {b}");
}
