//! A real browser for the web UI tests: Debian's Chromium, driven over WebDriver by its own
//! chromedriver (`scripts/deps.sh` installs both; their versions always match), from Rust with
//! fantoccini. Each [`Chrome`] is one chromedriver on a free port and one fresh profile;
//! dropping it ends both.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::TempDir;

/// A chromedriver and the profile directory of its browser.
pub struct Chrome {
    driver: Child,
    port: u16,
    dir: TempDir,
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.exists()))
}

impl Chrome {
    /// Starts chromedriver (panics with the fix when Chromium is not installed).
    pub fn start() -> Chrome {
        let driver_bin = which("chromedriver").expect("chromedriver not found: scripts/deps.sh installs chromium and chromium-driver");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = TempDir::new("chrome");
        let log = std::fs::File::create(dir.path().join("chromedriver.log")).unwrap();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Chrome { driver, port, dir }
    }

    /// A new browser session: headless Chromium at `width`×`height`, accepting the proxy's
    /// self-signed certificate as a user who clicked through would.
    pub async fn client(&self, width: u32, height: u32) -> Client {
        self.client_with(width, height, &[]).await
    }

    /// [`Chrome::client`] with more Chromium flags (e.g. `--host-resolver-rules=MAP *.x 127.1.2.3`:
    /// DNS names for apps without touching the machine's resolver).
    pub async fn client_with(&self, width: u32, height: u32, extra: &[String]) -> Client {
        let chromium = which("chromium").expect("chromium not found: scripts/deps.sh installs it");
        let profile = self.dir.path().join(format!("profile-{}", shared::certs::random_hex(4)));
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--ignore-certificate-errors".into(),
            "--hide-scrollbars".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.display()),
        ];
        let args: Vec<String> = args.into_iter().chain(extra.iter().cloned()).collect();
        let caps = serde_json::json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {"binary": chromium.display().to_string(), "args": args},
        });
        let mut b = ClientBuilder::rustls().expect("TLS for the WebDriver client");
        b.capabilities(caps.as_object().unwrap().clone());
        b.connect(&format!("http://127.0.0.1:{}", self.port)).await.expect("a Chromium session")
    }

    /// chromedriver's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // A test that failed never closed its session: Chromium outlives its driver then. Every
        // browser of this driver has its profile under our directory.
        let _ = Command::new("pkill").arg("-f").arg(self.dir.path()).status();
    }
}

/// A runtime for one test's browser steps.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Types `text` into the (cleared) field `css`.
pub async fn fill(c: &Client, css: &str, text: &str) {
    let el = wait_css(c, css, Duration::from_secs(10)).await;
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

/// Clicks `css`.
pub async fn click(c: &Client, css: &str) {
    wait_css(c, css, Duration::from_secs(10)).await.click().await.unwrap();
}

/// The current page's path.
pub async fn path_of(c: &Client) -> String {
    c.current_url().await.map(|u| u.path().to_string()).unwrap_or_default()
}

/// Waits until the page is `want`.
pub async fn wait_path(c: &Client, want: &str) {
    wait_until(&format!("the page {want}"), Duration::from_secs(15), || async {
        let p = path_of(c).await;
        (p == want).then_some(())
    })
    .await;
}

/// The page's text.
pub async fn body_text(c: &Client) -> String {
    c.find(Locator::Css("body")).await.unwrap().text().await.unwrap_or_default()
}

/// Saves a screenshot as `<name>.png` in [`shots_dir`].
pub async fn save_shot(c: &Client, name: &str) -> Vec<u8> {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots_dir().join(format!("{name}.png")), &png).unwrap();
    png
}

/// Waits until `css` matches an element (at most `timeout`).
pub async fn wait_css(c: &Client, css: &str, timeout: Duration) -> fantoccini::elements::Element {
    c.wait().at_most(timeout).for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css:?} within {timeout:?}: {e}"))
}

/// Polls `f` (async) until it returns `Some`, at most `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the terminal's rows.
pub async fn terminal_text(c: &Client) -> String {
    c.execute("const r = document.querySelector('.xterm-rows'); return r ? r.innerText : '';", vec![])
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Where the tests keep screenshots (`target/browser-shots`).
pub fn shots_dir() -> PathBuf {
    let d = crate::bin_dir().parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("target")).join("browser-shots");
    let _ = std::fs::create_dir_all(&d);
    d
}

/// Share of the pixels of a PNG that differ from `background` (RGB) by more than a little.
pub fn non_background_share(png_bytes: &[u8], background: (u8, u8, u8)) -> f64 {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let (mut total, mut differ) = (0usize, 0usize);
    for px in pixels.chunks(channels) {
        if channels < 3 {
            continue;
        }
        total += 1;
        let d = |a: u8, b: u8| (i16::from(a) - i16::from(b)).unsigned_abs();
        if d(px[0], background.0) + d(px[1], background.1) + d(px[2], background.2) > 60 {
            differ += 1;
        }
    }
    if total == 0 { 0.0 } else { differ as f64 / total as f64 }
}
