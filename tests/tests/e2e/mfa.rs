//! A second factor for local users: TOTP codes (RFC 6238), as Teleport's `second_factor: otp`.
//! The codes are computed here from the secret the invite hands out, as an authenticator app
//! would.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use e2e::*;
use shared::totp;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Waits until at least `secs` seconds remain in the current 30-second step, so that the codes
/// of the previous, current and next step all stay valid for the next `secs` seconds.
fn fresh_window(secs: i64) {
    // (At most 30 - secs seconds.)
    while totp::STEP_SECONDS - now().rem_euclid(totp::STEP_SECONDS) < secs {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The code of step `now + offset` steps.
fn code(secret: &[u8], offset: i64) -> String {
    totp::code_at(secret, now() + offset * totp::STEP_SECONDS)
}

fn secret_of(info: &serde_json::Value) -> Vec<u8> {
    let url = info["otpauth_url"].as_str().unwrap_or_else(|| panic!("no otpauth_url: {info}"));
    let b32 = url.split("secret=").nth(1).and_then(|r| r.split('&').next()).expect("secret in the URL");
    totp::decode_secret(b32).expect("base32 secret")
}

fn login(tsh: &Tsh, c: &Cluster, user: &str, stdin: &str) -> Out {
    tsh.run_stdin(&["login", &format!("--proxy={}", c.web), &format!("--user={user}")], Some(stdin))
}

fn mfa_cluster(name: &str, second_factor: Option<&str>) -> (Cluster, Tsh) {
    let mut o = ClusterOpts::new(name);
    o.second_factor = second_factor.map(str::to_string);
    let c = Cluster::start(o);
    let mut tsh = Tsh::new(name);
    tsh.env.push(("SSL_CERT_FILE".into(), c.web_ca().display().to_string()));
    (c, tsh)
}

#[test]
fn a_new_cluster_asks_local_users_for_an_otp_code() {
    ensure_unix_user("visitor");
    let (c, tsh) = mfa_cluster("mfa-otp.example.com", None);
    // The product's default: a second factor, as Teleport's current releases.
    let cap = c.tctl(&["get", "cap", "--format=json"]).json();
    assert_eq!(cap[0]["kind"], "cluster_auth_preference", "{cap}");
    assert_eq!(cap[0]["metadata"]["name"], "cluster-auth-preference");
    assert_eq!(cap[0]["spec"]["second_factor"], "otp");
    assert_eq!(cap[0]["spec"]["type"], "local");
    assert_eq!(c.https_get("/webapi/ping")["auth"]["second_factor"], "otp");

    // The invite hands out a TOTP device: an otpauth:// URL and its QR code.
    let token = c.invite("alice", "access", "visitor");
    let info = c.https_get(&format!("/webapi/users/password/token/{token}"));
    assert_eq!(info["user"], "alice", "{info}");
    assert_eq!(info["second_factor"], "otp");
    let url = info["otpauth_url"].as_str().unwrap_or_default();
    assert!(url.starts_with("otpauth://totp/mfa-otp.example.com:alice?secret="), "{url}");
    assert!(info["qr_svg"].as_str().unwrap_or_default().contains("<svg"), "{info}");
    let secret = secret_of(&info);
    // Without a code, or with a wrong one, the password is not set; the link still works.
    let set = |code: Option<String>| {
        let mut body = serde_json::json!({"token": token, "password": "alice-password-1"});
        if let Some(c) = code {
            body["second_factor_token"] = serde_json::json!(c);
        }
        c.https_put("/webapi/users/password/token", &body)
    };
    let r = set(None);
    assert!(r["error"]["message"].as_str().unwrap_or_default().contains("requires a second factor"), "{r}");
    let r = set(Some("000000".into()));
    assert!(r["error"]["message"].as_str().unwrap_or_default().contains("does not match"), "{r}");
    fresh_window(20);
    let s0 = totp::step_of(now());
    let r = set(Some(code(&secret, -1)));
    assert_eq!(r["username"], "alice", "{r}");

    // tsh asks for the password, then "Enter an OTP code from a device:" (one line each on
    // standard input).
    let t = Instant::now();
    let out = login(&tsh, &c, "alice", &format!("alice-password-1\n{}\n", code(&secret, 0)));
    out.ok("login with password and code");
    eprintln!("otp: password + code login took {:?}", t.elapsed());
    assert_eq!(tsh.run(&["ssh", "visitor@mfa-otp-node", "echo in"]).ok("ssh"), "in\n");
    // The same code again: refused (codes are single-use); a wrong one, a wrong password and
    // no code: refused, with one message that does not say which part was wrong.
    let out = login(&tsh, &c, "alice", &format!("alice-password-1\n{}\n", code(&secret, 0)));
    out.fails_with("reused code", "this OTP code was already used");
    let out = login(&tsh, &c, "alice", "alice-password-1\n123456\n");
    out.fails_with("wrong code", "invalid username, password or second factor");
    let out = login(&tsh, &c, "alice", &format!("wrong-password-1\n{}\n", code(&secret, 1)));
    out.fails_with("wrong password", "invalid username, password or second factor");
    let out = login(&tsh, &c, "alice", "alice-password-1\n");
    out.fails_with("no code", "no OTP code given");
    let failed = c.events().into_iter().filter(|e| e["event"] == "user.login" && e["success"] == false).count();
    assert!(failed >= 3, "failed logins are audited: {failed}");

    // tsh mfa ls / add / rm.
    let ls = tsh.run(&["mfa", "ls", "--format=json"]).json();
    assert_eq!(ls.as_array().map(Vec::len), Some(1), "{ls}");
    assert_eq!(ls[0]["name"], "otp");
    assert_eq!(ls[0]["type"], "TOTP");
    let mut add = tsh.command(&["mfa", "add", "--name=phone"]);
    add.stdin(Stdio::piped());
    let mut child = add.spawn().expect("tsh mfa add");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{}", code(&secret, 1)).expect("existing code");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let new_secret = loop {
        let line = lines.next().expect("tsh mfa add printed the secret").expect("line");
        if let Some(rest) = line.trim().strip_prefix("(otpauth://") {
            let b32 = rest.split("secret=").nth(1).and_then(|r| r.split('&').next()).expect("secret").to_string();
            break totp::decode_secret(&b32).expect("secret");
        }
    };
    writeln!(stdin, "{}", code(&new_secret, 0)).expect("new device code");
    drop(stdin);
    let out = child.wait_with_output().expect("tsh mfa add");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "MFA device \"phone\" added.\n");
    let ls = tsh.run(&["mfa", "ls"]);
    assert!(ls.ok("mfa ls").contains("phone") && ls.stdout.contains("Last used"), "{}", ls.stdout);
    // Removing one needs a current code; the last one cannot go while codes are required.
    let out = tsh.run_stdin(&["mfa", "rm", "otp"], Some(&format!("{}\n", code(&new_secret, 1))));
    assert_eq!(out.ok("mfa rm"), "MFA device \"otp\" removed.\n");
    // The last device cannot go while codes are required (the proof needs a step not used on
    // it yet: the next one).
    while totp::step_of(now()) <= s0 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = tsh.run_stdin(&["mfa", "rm", "phone"], Some(&format!("{}\n", code(&new_secret, 1))));
    out.fails_with("the last device", "cannot delete the last MFA device for this user");
    assert!(c.events().iter().any(|e| e["event"] == "mfa.add" && e["code"] == "T1006I"), "mfa.add audited");

    // tctl users reset: the password and the devices go; the new link registers a device again.
    let out = c.tctl(&["users", "reset", "alice"]);
    let url = out.ok("reset").lines().find(|l| l.starts_with("https://")).expect("reset URL").trim().to_string();
    let token2 = url.rsplit('/').next().expect("token").to_string();
    let out = login(&tsh, &c, "alice", &format!("alice-password-1\n{}\n", code(&new_secret, 1)));
    out.fails_with("after a reset", "invalid username, password or second factor");
    let info = c.https_get(&format!("/webapi/users/password/token/{token2}"));
    assert_eq!(info["kind"], "reset");
    let s2 = secret_of(&info);
    assert_ne!(s2, secret, "a reset hands out a new secret");
    fresh_window(10);
    let r = c.https_put(
        "/webapi/users/password/token",
        &serde_json::json!({"token": token2, "password": "alice-password-2", "second_factor_token": code(&s2, 0)}),
    );
    assert_eq!(r["username"], "alice", "{r}");
    login(&tsh, &c, "alice", &format!("alice-password-2\n{}\n", code(&s2, 1))).ok("login after the reset");
}

#[test]
fn an_optional_second_factor_asks_only_users_who_have_a_device() {
    let (c, tsh) = mfa_cluster("mfa-opt.example.com", Some("optional"));
    let cap = c.tctl(&["get", "cap", "--format=json"]).json();
    assert_eq!(cap[0]["spec"]["second_factor"], "optional");
    assert_eq!(cap[0]["metadata"]["labels"]["teleport.dev/origin"], "config-file", "{cap}");
    let token = c.invite("bob", "access", "visitor");
    let r = c.https_put("/webapi/users/password/token", &serde_json::json!({"token": token, "password": "bob-password-1"}));
    assert_eq!(r["username"], "bob", "optional: a password alone sets up the user: {r}");
    // No device: the password alone (one line of input; no prompt for a code).
    login(&tsh, &c, "bob", "bob-password-1\n").ok("password only");
    // Bob registers a device; from then on tsh asks him for a code.
    let mut add = tsh.command(&["mfa", "add", "--name=phone"]);
    add.stdin(Stdio::piped());
    let mut child = add.spawn().expect("tsh mfa add");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let secret = loop {
        let line = lines.next().expect("the secret").expect("line");
        if let Some(rest) = line.trim().strip_prefix("(otpauth://") {
            let b32 = rest.split("secret=").nth(1).and_then(|r| r.split('&').next()).expect("secret").to_string();
            break totp::decode_secret(&b32).expect("secret");
        }
    };
    fresh_window(10);
    writeln!(stdin, "{}", code(&secret, 0)).expect("code");
    drop(stdin);
    assert!(child.wait().expect("wait").success());
    let out = login(&tsh, &c, "bob", "bob-password-1\n");
    out.fails_with("device registered, no code", "no OTP code given");
    login(&tsh, &c, "bob", &format!("bob-password-1\n{}\n", code(&secret, 1))).ok("password, then a code");
}

#[test]
fn the_auth_preference_is_a_resource_and_a_config_setting() {
    let (c, _tsh) = mfa_cluster("mfa-cap.example.com", None);
    let cap = c.tctl(&["get", "cap"]);
    let text = cap.ok("tctl get cap");
    assert!(text.contains("kind: cluster_auth_preference") && text.contains("second_factor: otp"), "{text}");
    let table = c.tctl(&["get", "cap", "--format=text"]);
    assert!(table.ok("text").contains("Second Factor"), "{}", table.stdout);
    // tctl create replaces the default without -f; a second create needs -f.
    let off = "kind: cluster_auth_preference\nversion: v2\nmetadata:\n  name: cluster-auth-preference\nspec:\n  type: local\n  second_factor: 'off'\n";
    c.create("cap.yaml", off).ok("create over the default");
    assert_eq!(c.https_get("/webapi/ping")["auth"]["second_factor"], "off");
    c.create("cap.yaml", off).fails_with("second create", "use tctl create -f to replace it");
    c.create_force("cap.yaml", &off.replace("'off'", "optional")).ok("create -f");
    assert_eq!(c.https_get("/webapi/ping")["auth"]["second_factor"], "optional");
    // Security keys are not implemented: said plainly, nothing changes.
    let out = c.create_force("cap.yaml", &off.replace("'off'", "webauthn"));
    out.fails_with("webauthn", "WebAuthn and U2F security keys are not implemented");
    assert_eq!(c.https_get("/webapi/ping")["auth"]["second_factor"], "optional");
    c.tctl(&["rm", "cap/cluster-auth-preference"]).fails_with("rm", "cannot be removed");
    // tctl edit cap (no name: there is one per cluster).
    let editor = c.dir.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i 's/second_factor: optional/second_factor: otp/' \"$1\"\n").expect("editor");
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let out = c.tctl_env(&["edit", "cap"], &[("EDITOR", editor.to_str().expect("path"))], None);
    assert!(out.ok("tctl edit cap").contains("cluster auth preference"), "{}", out.stdout);
    assert_eq!(c.https_get("/webapi/ping")["auth"]["second_factor"], "otp");
    // A bad value in teleport.yaml stops the start with one clear line.
    let dir = TempDir::new("mfa-badcfg");
    let cfg = dir.path().join("t.yaml");
    std::fs::write(
        &cfg,
        format!(
            "version: v3\nteleport:\n  data_dir: {}\nauth_service:\n  cluster_name: bad.example.com\n  authentication:\n    type: local\n    second_factor: sms\nssh_service:\n  enabled: no\nproxy_service:\n  web_listen_addr: 127.0.0.1:0\n",
            dir.path().join("data").display()
        ),
    )
    .expect("config");
    let out = run(&bin("teleport"), &["start", "-c", cfg.to_str().expect("path")], &[], None, Duration::from_secs(30));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("auth_service.authentication: spec: second_factor: unknown value \"sms\""), "{}", out.stderr);
}

#[test]
fn wrong_codes_lock_a_users_codes_even_the_right_one() {
    let (c, tsh) = mfa_cluster("mfa-lock.example.com", None);
    let token = c.invite("bob", "access", "");
    let info = c.https_get(&format!("/webapi/users/password/token/{token}"));
    let secret = secret_of(&info);
    fresh_window(10);
    let r = c.https_put(
        "/webapi/users/password/token",
        &serde_json::json!({"token": token, "password": "bob-password-1", "second_factor_token": code(&secret, 0)}),
    );
    assert_eq!(r["username"], "bob", "{r}");
    // Four wrong codes after the right password: each refused as before.
    for _ in 0..4 {
        login(&tsh, &c, "bob", "bob-password-1\n000000\n").fails_with("a wrong code", "invalid username, password or second factor");
    }
    // The fifth locks the user's codes; then even the right code is refused.
    login(&tsh, &c, "bob", "bob-password-1\n000001\n").fails_with("the fifth wrong code", "too many wrong second-factor codes");
    fresh_window(5);
    login(&tsh, &c, "bob", &format!("bob-password-1\n{}\n", code(&secret, 1)))
        .fails_with("the right code during the lockout", "this user's codes are refused until");
    let events = c.events();
    let wrong = events.iter().filter(|e| e["event"] == "mfa_auth_challenge.validate" && e["user"] == "bob").count();
    assert_eq!(wrong, 6, "every wrong code and the refused right one are audited");
    assert_eq!(events.iter().filter(|e| e["event"] == "user.lockout" && e["user"] == "bob").count(), 1);
    // An administrator's reset lifts it (with a new link and a new device).
    let out = c.tctl(&["users", "reset", "bob"]);
    let url = out.ok("reset").lines().find(|l| l.starts_with("https://")).expect("reset URL").trim().to_string();
    let token2 = url.rsplit('/').next().expect("token").to_string();
    let info = c.https_get(&format!("/webapi/users/password/token/{token2}"));
    let s2 = secret_of(&info);
    fresh_window(10);
    let r = c.https_put(
        "/webapi/users/password/token",
        &serde_json::json!({"token": token2, "password": "bob-password-2", "second_factor_token": code(&s2, 0)}),
    );
    assert_eq!(r["username"], "bob", "{r}");
    login(&tsh, &c, "bob", &format!("bob-password-2\n{}\n", code(&s2, 1))).ok("signed in after the reset");

    // The device endpoints count wrong codes too (with the user's own certificate): rate-limited,
    // audited, and locking like a sign-in.
    let mut seen = Vec::new();
    for _ in 0..6 {
        let out = tsh.run_stdin(&["mfa", "rm", "otp"], Some("000000\n"));
        assert_eq!(out.code, 1, "{out:?}");
        seen.push(out.stderr.trim().to_string());
    }
    assert!(seen[..4].iter().all(|e| e.contains("invalid username, password or second factor")), "{seen:?}");
    assert!(seen[4].contains("too many wrong second-factor codes"), "{seen:?}");
    assert!(seen[5].contains("this user's codes are refused until"), "{seen:?}");
    let how: Vec<String> = c
        .events()
        .iter()
        .filter(|e| e["event"] == "mfa_auth_challenge.validate" && e["how"] == "remove a device")
        .map(|e| e["error"].to_string())
        .collect();
    assert_eq!(how.len(), 6, "{how:?}");
}
