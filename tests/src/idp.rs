//! Identity providers for the SSO tests, and the browser that signs in through them.
//!
//! - [`Idp::oidc`]: panva's `oidc-provider` (a certified OpenID provider) from `tests/idp`.
//! - [`Idp::saml`]: a SAML IdP built on `samlify` from `tests/idp`.
//! - [`GithubStandIn`]: GitHub itself is not reachable from CI, so this small server speaks
//!   GitHub's OAuth endpoints and the two REST calls the connector makes (`/user`,
//!   `/user/teams` with `Link` pagination). It is a stand-in, named as such.
//! - [`Browser`]: curl with a cookie jar, following redirects one by one and posting forms,
//!   so every step a browser takes goes through the real servers.
//! - [`SsoLogin`]: `tsh login --browser=none` running, with the link it printed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::{Out, TempDir, Tsh, free_ip, run};

/// `tests/idp`, with `npm ci` run once if its `node_modules` is missing.
pub fn idp_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("idp");
    if !dir.join("node_modules/oidc-provider").exists() || !dir.join("node_modules/samlify").exists() {
        // Tests run in parallel processes: one installs, the others wait on the lock.
        let out = run(
            Path::new("flock"),
            &[
                "/tmp/tp-e2e-npm.lock",
                "sh",
                "-c",
                &format!("cd '{}' && [ -d node_modules/samlify ] || npm ci --no-audit --no-fund", dir.display()),
            ],
            &[],
            None,
            Duration::from_secs(300),
        );
        out.ok("npm ci in tests/idp (needs node and npm: scripts/deps.sh installs them)");
    }
    dir
}

/// A running identity provider (a `node` process), stopped on drop.
pub struct Idp {
    /// Its base URL (the OIDC issuer; the SAML IdP's base).
    pub url: String,
    child: Child,
    /// Its output.
    pub log: Arc<Mutex<String>>,
}

impl Idp {
    fn start(script: &str, env: &[(&str, String)]) -> Idp {
        let dir = idp_dir();
        let ip = free_ip(&[]);
        let mut cmd = Command::new("node");
        cmd.arg(dir.join(script)).current_dir(&dir).env("IDP_HOST", &ip).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start node (install nodejs: scripts/deps.sh)");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("IdP ready ") {
                    let _ = tx.send(url.to_string());
                }
                l.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                l.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("{script} did not start:\n{}", log.lock().unwrap()));
        Idp { url, child, log }
    }

    /// An OpenID provider with these users (`{"alice": {"password", "claims"}}`) and one
    /// client allowed to return to `redirect_uri`.
    pub fn oidc(users: &serde_json::Value, client_id: &str, client_secret: &str, redirect_uri: &str) -> Idp {
        let clients = serde_json::json!([{
            "client_id": client_id, "client_secret": client_secret, "redirect_uris": [redirect_uri],
            "response_types": ["code"], "grant_types": ["authorization_code"],
        }]);
        Idp::start("oidc-idp.mjs", &[("IDP_USERS", users.to_string()), ("IDP_CLIENTS", clients.to_string())])
    }

    /// A SAML IdP with these users (`{"alice": {"password", "attributes"}}`) for the service
    /// provider whose entity ID and ACS are `acs`.
    pub fn saml(users: &serde_json::Value, acs: &str) -> Idp {
        Idp::start("saml-idp.mjs", &[("IDP_USERS", users.to_string()), ("IDP_SP_ENTITY_ID", acs.to_string()), ("IDP_ACS", acs.to_string())])
    }

    /// Switches the IdP's test tamper mode (see the scripts).
    pub fn tamper(&self, mode: &str) {
        run(
            Path::new("curl"),
            &["-sf", "-X", "POST", &format!("{}/_test/tamper?mode={mode}", self.url)],
            &[],
            None,
            Duration::from_secs(10),
        )
        .ok("tamper");
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Page {
    /// The URL asked for.
    pub url: String,
    /// Status code.
    pub status: u16,
    /// `Location`, made absolute.
    pub location: Option<String>,
    /// The body.
    pub body: String,
}

/// An HTML form on a page.
#[derive(Debug, Clone)]
pub struct Form {
    /// Where it posts to (absolute).
    pub action: String,
    /// Its inputs with their values.
    pub fields: Vec<(String, String)>,
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&#x2F;", "/").replace("&#39;", "'").replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(html_unescape(&tag[start..end]))
}

/// The origin (`scheme://host:port`) of a URL.
pub fn origin(url: &str) -> String {
    let after = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[after..].find('/').map(|i| i + after).unwrap_or(url.len());
    url[..end].to_string()
}

fn absolute(base: &str, loc: &str) -> String {
    if loc.contains("://") {
        loc.to_string()
    } else if loc.starts_with('/') {
        format!("{}{loc}", origin(base))
    } else {
        format!("{}/{loc}", origin(base))
    }
}

/// A form-encoded value.
pub fn form_escape(s: &str) -> String {
    shared::sso::query_escape(s)
}

/// A browser: curl with a cookie jar, trusting the proxy's web CA.
pub struct Browser {
    dir: TempDir,
    ca: PathBuf,
}

impl Browser {
    /// A browser that trusts `ca` (the proxy's generated web CA).
    pub fn new(ca: &Path) -> Browser {
        Browser { dir: TempDir::new("browser"), ca: ca.to_path_buf() }
    }

    /// One request; `form` makes it a POST.
    pub fn request(&self, url: &str, form: Option<&[(String, String)]>) -> Page {
        let jar = self.dir.path().join("cookies");
        let headers = self.dir.path().join("headers");
        let body = self.dir.path().join("body");
        let (jar_s, headers_s, body_s, ca_s) =
            (jar.display().to_string(), headers.display().to_string(), body.display().to_string(), self.ca.display().to_string());
        let mut args: Vec<String> = [
            "-s",
            "-S",
            "--max-time",
            "30",
            "-b",
            &jar_s,
            "-c",
            &jar_s,
            "-D",
            &headers_s,
            "-o",
            &body_s,
            "-w",
            "%{http_code}",
            "--cacert",
            &ca_s,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(f) = form {
            let data: Vec<String> = f.iter().map(|(k, v)| format!("{}={}", form_escape(k), form_escape(v))).collect();
            args.extend([
                "-X".into(),
                "POST".into(),
                "-H".into(),
                "Content-Type: application/x-www-form-urlencoded".into(),
                "--data-raw".into(),
                data.join("&"),
            ]);
        }
        args.push(url.to_string());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(Path::new("curl"), &refs, &[], None, Duration::from_secs(40));
        let status: u16 = out.stdout.trim().parse().unwrap_or(0);
        let head = std::fs::read_to_string(&headers).unwrap_or_default();
        let location = head
            .lines()
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("location")).map(|(_, v)| v.trim().to_string()))
            .map(|l| absolute(url, &l));
        let text = std::fs::read_to_string(&body).unwrap_or_default();
        let _ = std::fs::remove_file(&headers);
        let _ = std::fs::remove_file(&body);
        Page { url: url.into(), status, location, body: text }
    }

    /// Follows redirects from `url` (at most 20); every page seen, the last one last.
    pub fn follow(&self, url: &str, form: Option<&[(String, String)]>) -> Vec<Page> {
        let mut pages = vec![self.request(url, form)];
        for _ in 0..20 {
            let last = pages.last().unwrap();
            if !(300..400).contains(&last.status) {
                break;
            }
            let Some(next) = last.location.clone() else { break };
            pages.push(self.request(&next, None));
        }
        pages
    }

    /// Like [`Browser::follow`], stopping before a URL `stop` says yes to (the page that
    /// would go there is the last one).
    pub fn follow_until(&self, url: &str, form: Option<&[(String, String)]>, stop: impl Fn(&str) -> bool) -> Vec<Page> {
        let mut pages = vec![self.request(url, form)];
        for _ in 0..20 {
            let last = pages.last().unwrap();
            let Some(next) = last.location.clone().filter(|_| (300..400).contains(&last.status)) else { break };
            if stop(&next) {
                break;
            }
            pages.push(self.request(&next, None));
        }
        pages
    }

    /// The first form of a page.
    pub fn form(page: &Page) -> Form {
        let start = page.body.find("<form").unwrap_or_else(|| panic!("no form on {}:\n{}", page.url, page.body));
        let end = page.body[start..].find('>').unwrap() + start;
        let action = attr(&page.body[start..=end], "action").unwrap_or_else(|| page.url.clone());
        let close = page.body[start..].find("</form>").map(|i| i + start).unwrap_or(page.body.len());
        let mut fields = Vec::new();
        let mut rest = &page.body[start..close];
        while let Some(i) = rest.find("<input") {
            let tag_end = rest[i..].find('>').map(|j| j + i).unwrap_or(rest.len() - 1);
            let tag = &rest[i..=tag_end];
            if let Some(name) = attr(tag, "name") {
                fields.push((name, attr(tag, "value").unwrap_or_default()));
            }
            rest = &rest[tag_end + 1..];
        }
        Form { action: absolute(&page.url, &action), fields }
    }

    /// The first form of a page with its `login` and `password` filled in.
    pub fn login_form(page: &Page, login: &str, password: &str) -> Form {
        let mut form = Self::form(page);
        for (k, v) in form.fields.iter_mut() {
            if k == "login" {
                *v = login.into();
            }
            if k == "password" {
                *v = password.into();
            }
        }
        form
    }

    /// Fills in `login` and `password` of the page's form and submits it, following redirects.
    pub fn sign_in(&self, page: &Page, login: &str, password: &str) -> Vec<Page> {
        let form = Self::login_form(page, login, password);
        self.follow(&form.action, Some(&form.fields))
    }
}

/// `tsh login --browser=none …` running in the background.
pub struct SsoLogin {
    child: Option<Child>,
    /// The link tsh printed.
    pub link: String,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    started: Instant,
}

impl SsoLogin {
    /// Starts `tsh login` with `args` and waits for the link it prints.
    pub fn start(tsh: &Tsh, args: &[&str]) -> SsoLogin {
        let mut cmd = tsh.command(args);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().expect("tsh login");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let mut err = child.stderr.take().expect("stderr");
        let e = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut s = e.lock().unwrap();
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
                if let Some(link) = s.lines().map(str::trim).find(|l| l.starts_with("http://127.0.0.1:")) {
                    let _ = tx.send(link.to_string());
                }
            }
        });
        let mut out = child.stdout.take().expect("stdout");
        let o = stdout.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            o.lock().unwrap().push_str(&s);
        });
        let mut login = SsoLogin { child: Some(child), link: String::new(), stderr, stdout, started };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(link) => login.link = link,
            Err(_) => {
                let out = login.wait(Duration::from_secs(1));
                panic!("tsh login printed no link: {out:?}");
            }
        }
        login
    }

    /// Waits for tsh to exit (killing it after `timeout`).
    pub fn wait(&mut self, timeout: Duration) -> Out {
        let mut child = self.child.take().expect("waited once");
        let deadline = Instant::now() + timeout;
        let mut code = None;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = child.try_wait() {
                code = Some(s.code().unwrap_or(-1));
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let code = code.unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            -1
        });
        // Let the readers drain.
        std::thread::sleep(Duration::from_millis(100));
        Out { code, stdout: self.stdout.lock().unwrap().clone(), stderr: self.stderr.lock().unwrap().clone() }
    }

    /// Sends tsh a signal (SIGINT is Ctrl-C).
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        if let Some(c) = &self.child {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig);
        }
    }

    /// Time since tsh started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for SsoLogin {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A GitHub user of the stand-in.
#[derive(Debug, Clone)]
pub struct GithubUser {
    /// Password on the stand-in's sign-in form.
    pub password: String,
    /// (organization login, team slug, team name).
    pub teams: Vec<(String, String, String)>,
}

#[derive(Default)]
struct GithubState {
    users: HashMap<String, GithubUser>,
    /// code → (login, redirect_uri)
    codes: HashMap<String, (String, String)>,
    /// access token → login
    tokens: HashMap<String, String>,
    /// How many `/user/teams` pages were served.
    team_pages: usize,
}

/// A stand-in for GitHub (OAuth app flow and the REST API), on its own loopback address.
pub struct GithubStandIn {
    /// `http://ip:port` (both `endpoint_url` and, with `/api/v3`, `api_endpoint_url`).
    pub url: String,
    state: Arc<Mutex<GithubState>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

/// Teams per page of `/user/teams` (small, to exercise the pagination).
pub const GITHUB_TEAMS_PER_PAGE: usize = 2;

impl GithubStandIn {
    /// Starts it with these users and the one OAuth app `client_id`/`client_secret`.
    pub fn start(users: Vec<(&str, GithubUser)>, client_id: &str, client_secret: &str) -> GithubStandIn {
        let ip = free_ip(&[]);
        let listener = TcpListener::bind((ip.as_str(), 0)).expect("bind the GitHub stand-in");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state =
            Arc::new(Mutex::new(GithubState { users: users.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), ..Default::default() }));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (st, sp, base) = (state.clone(), stop.clone(), url.clone());
        let (cid, secret) = (client_id.to_string(), client_secret.to_string());
        std::thread::spawn(move || {
            while !sp.load(std::sync::atomic::Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (st, base, cid, secret) = (st.clone(), base.clone(), cid.clone(), secret.clone());
                        std::thread::spawn(move || {
                            let _ = github_serve(stream, &st, &base, &cid, &secret);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        GithubStandIn { url, state, stop }
    }

    /// How many pages of teams were served so far.
    pub fn team_pages(&self) -> usize {
        self.state.lock().unwrap().team_pages
    }
}

impl Drop for GithubStandIn {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn github_serve(
    stream: std::net::TcpStream,
    st: &Mutex<GithubState>,
    base: &str,
    client_id: &str,
    client_secret: &str,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len.min(1 << 20)];
    reader.read_exact(&mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let q = shared::sso::parse_query(query);
    let form = shared::sso::parse_query(&String::from_utf8_lossy(&body));
    let get = |v: &[(String, String)], k: &str| v.iter().find(|(n, _)| n == k).map(|(_, x)| x.clone()).unwrap_or_default();
    let mut extra = String::new();
    let (status, ctype, text) = match (method.as_str(), path) {
        ("GET", "/login/oauth/authorize") => {
            if get(&q, "client_id") != client_id {
                (404, "text/html", "<p>unknown OAuth app</p>".to_string())
            } else {
                let hidden: String = ["redirect_uri", "state"]
                    .iter()
                    .map(|k| {
                        format!(
                            "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                            get(&q, k).replace('&', "&amp;").replace('"', "&quot;")
                        )
                    })
                    .collect();
                (
                    200,
                    "text/html",
                    format!(
                        "<html><body><h1>GitHub stand-in: sign in</h1><form method=\"post\" action=\"/session\">{hidden}<input name=\"login\"><input name=\"password\" type=\"password\"></form></body></html>"
                    ),
                )
            }
        }
        ("POST", "/session") => {
            let login = get(&form, "login");
            let ok = st.lock().unwrap().users.get(&login).is_some_and(|u| u.password == get(&form, "password"));
            if ok {
                let code = shared::certs::random_hex(10);
                let redirect = get(&form, "redirect_uri");
                st.lock().unwrap().codes.insert(code.clone(), (login, redirect.clone()));
                let sep = if redirect.contains('?') { '&' } else { '?' };
                extra = format!("Location: {redirect}{sep}code={code}&state={}\r\n", form_escape(&get(&form, "state")));
                (302, "text/html", String::new())
            } else {
                (401, "text/html", "<p id=\"error\">Incorrect username or password.</p>".into())
            }
        }
        ("POST", "/login/oauth/access_token") => {
            let taken = st.lock().unwrap().codes.remove(&get(&form, "code"));
            let answer = match taken {
                _ if get(&form, "client_id") != client_id || get(&form, "client_secret") != client_secret => {
                    serde_json::json!({"error": "incorrect_client_credentials", "error_description": "The client_id and/or client_secret passed are incorrect."})
                }
                Some((login, redirect)) if redirect == get(&form, "redirect_uri") => {
                    let token = format!("gho_{}", shared::certs::random_hex(12));
                    st.lock().unwrap().tokens.insert(token.clone(), login);
                    serde_json::json!({"access_token": token, "token_type": "bearer", "scope": "read:org"})
                }
                _ => serde_json::json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}),
            };
            (200, "application/json", answer.to_string())
        }
        ("GET", "/api/v3/user") | ("GET", "/api/v3/user/teams") => {
            let token = headers.get("authorization").and_then(|a| a.strip_prefix("token ")).unwrap_or_default().to_string();
            let mut s = st.lock().unwrap();
            match s.tokens.get(&token).cloned() {
                None => (401, "application/json", serde_json::json!({"message": "Bad credentials"}).to_string()),
                Some(login) if path == "/api/v3/user" => {
                    (200, "application/json", serde_json::json!({"login": login, "id": 1}).to_string())
                }
                Some(login) => {
                    s.team_pages += 1;
                    let teams = s.users.get(&login).map(|u| u.teams.clone()).unwrap_or_default();
                    let page: usize = get(&q, "page").parse().unwrap_or(1).max(1);
                    let chunk: Vec<serde_json::Value> = teams
                        .iter()
                        .skip((page - 1) * GITHUB_TEAMS_PER_PAGE)
                        .take(GITHUB_TEAMS_PER_PAGE)
                        .map(|(org, slug, name)| serde_json::json!({"name": name, "slug": slug, "organization": {"login": org}}))
                        .collect();
                    if page * GITHUB_TEAMS_PER_PAGE < teams.len() {
                        extra = format!("Link: <{base}/api/v3/user/teams?page={}>; rel=\"next\"\r\n", page + 1);
                    }
                    (200, "application/json", serde_json::Value::Array(chunk).to_string())
                }
            }
        }
        _ => (404, "text/plain", "not found".into()),
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{text}",
        text.len()
    )?;
    out.flush()
}
