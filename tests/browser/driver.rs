//! Starts `chromedriver` on a free port and opens headless Chromium sessions
//! through it (fantoccini). When Chromium or chromedriver is not installed the
//! tests skip with a message, unless `PORTCULLIS_REQUIRE_BROWSER` is set (CI
//! sets it, so a broken install fails instead of silently skipping).

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use fantoccini::{
    Client, ClientBuilder, Locator, elements::Element, wd::WebDriverCompatibleCommand,
};
use serde_json::{Value, json};

use crate::helpers::{PORT_ATTEMPTS, free_port, listens_on};

const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
const DEFAULT_CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_CHROMIUM.into())
}

fn chromedriver_path() -> PathBuf {
    std::env::var_os("CHROMEDRIVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_CHROMEDRIVER.into())
}

/// Written straight to stderr: libtest captures `println!`/`eprintln!` of
/// passing tests, and a skip must be seen.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Why the browser tests cannot run here, if they cannot.
pub fn missing() -> Option<String> {
    let missing: Vec<String> = [chromium_path(), chromedriver_path()]
        .into_iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "{} not found (apt-get install chromium chromium-driver)",
            missing.join(" and ")
        )
    })
}

/// Returns true when the test should go on; prints why not otherwise.
pub fn should_run(test: &str) -> bool {
    match missing() {
        None => true,
        Some(why) => {
            assert!(
                std::env::var_os("PORTCULLIS_REQUIRE_BROWSER").is_none(),
                "browser test {test}: PORTCULLIS_REQUIRE_BROWSER is set but {why}"
            );
            say(&format!("SKIPPED browser test {test}: {why}"));
            false
        }
    }
}

/// A running chromedriver. Dropping it ends every browser it started and the
/// driver itself, even when the test panicked.
pub struct Driver {
    child: Child,
    port: u16,
    profiles: Mutex<Vec<tempfile::TempDir>>,
}

impl Driver {
    /// Starts chromedriver, or returns `None` (after printing why) when the
    /// browser is not installed. The port is chosen here, so another process
    /// (another test's chromedriver, say) may take it first: then chromedriver
    /// exits or `/status` is answered by the other one, and it is started
    /// again on a new port, a few times at most.
    pub fn start(test: &str) -> Option<Driver> {
        if !should_run(test) {
            return None;
        }
        let mut failures = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let mut child = Command::new(chromedriver_path())
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts");
            match wait_until_ready(&mut child, port) {
                Ok(()) => {
                    return Some(Driver {
                        child,
                        port,
                        profiles: Mutex::new(Vec::new()),
                    });
                }
                Err(why) => {
                    // Not a `Driver`: its Drop would send `/shutdown` to whoever owns the port.
                    let _ = child.kill();
                    let _ = child.wait();
                    failures.push(format!("port {port}: {why}"));
                }
            }
        }
        panic!("chromedriver did not start: {failures:?}");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A new headless Chromium with its own fresh profile (its own cookies).
    pub async fn browser(&self) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-quic".to_owned(),
            "--disable-default-apps".to_owned(),
            "--disable-extensions".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--password-store=basic".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium_path(), "args": args }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url())
            .await
            .expect("a Chromium session starts");
        self.profiles.lock().expect("profiles").push(profile);
        Browser { client }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // `/shutdown` makes chromedriver quit every Chromium it started, which a
        // plain kill would leave running.
        let _ = http_get(self.port, "/shutdown");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the chromedriver `child` itself answers `/status` on `port`
/// as ready. `Err` when the port turned out to be taken or it exited.
fn wait_until_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("chromedriver status") {
            return Err(format!("exited early ({status})"));
        }
        if let Some(body) = http_get(port, "/status")
            && body.contains("\"ready\":true")
        {
            if listens_on(child.id(), port) {
                return Ok(());
            }
            return Err("answered by another process".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("chromedriver on port {port} did not become ready");
}

/// A minimal blocking GET, usable from `Drop`.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    // chromedriver keeps the connection open: read the head, then exactly
    // Content-Length bytes.
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                break;
            }
        }
    }
    Some(String::from_utf8_lossy(&raw).into_owned())
}

/// A command chromedriver takes at `POST session/{id}/{path}` beyond what
/// fantoccini wraps: Chrome DevTools (`goog/cdp/execute`), the W3C WebAuthn
/// virtual authenticator (`webauthn/...`).
#[derive(Debug)]
pub struct SessionCommand {
    pub path: String,
    pub body: Value,
}

impl WebDriverCompatibleCommand for SessionCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// One browser session, with the helpers the tests use.
pub struct Browser {
    pub client: Client,
}

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigation");
    }

    /// The path and query of the current page.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits (bounded) until the browser shows `path` (query included).
    pub async fn wait_for_path(&self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = self.path().await;
            if now == path {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "expected the browser on {path}, it is on {now}"
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css} on the page: {e}"))
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("element text")
    }

    /// Clicks into a field and types, as a person would.
    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.click().await.expect("focus field");
        field.send_keys(text).await.expect("typing");
    }

    /// Clicks something that navigates (a link, a submit button) and waits
    /// until the new document has loaded, even when its URL is the same (a
    /// form re-rendered with errors).
    pub async fn click(&self, css: &str) {
        self.js("window.__portcullisOldPage = true;").await;
        self.find(css).await.click().await.expect("click");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let loaded = self
                .client
                .execute(
                    "return window.__portcullisOldPage === undefined && document.readyState === 'complete';",
                    Vec::new(),
                )
                .await
                .map(|v| v == Value::Bool(true))
                // A script may fail while the page is being replaced.
                .unwrap_or(false);
            if loaded {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clicking {css} did not load a new page"
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    pub async fn cookie_value(&self, name: &str) -> Option<String> {
        self.client
            .get_named_cookie(name)
            .await
            .ok()
            .map(|c| c.value().to_owned())
    }

    /// Emulates `prefers-color-scheme` for the pages of this session.
    pub async fn color_scheme(&self, scheme: &str) {
        self.client
            .issue_cmd(SessionCommand {
                path: "goog/cdp/execute".into(),
                body: json!({
                    "cmd": "Emulation.setEmulatedMedia",
                    "params": { "features": [{ "name": "prefers-color-scheme", "value": scheme }] },
                }),
            })
            .await
            .expect("emulate color scheme");
    }

    /// Resizes the viewport (headless: the window is the viewport).
    pub async fn viewport(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize");
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }

    /// Registers through the form, typing and clicking, and waits for
    /// `/protected`.
    pub async fn register(&self, base: &str, username: &str, password: &str) {
        self.goto(&format!("{base}/register")).await;
        self.type_into("#username", username).await;
        self.type_into("#password", password).await;
        self.type_into("#password_confirm", password).await;
        self.click("form[action='/register'] button[type=submit]")
            .await;
        self.wait_for_path("/protected").await;
    }

    /// Logs in through the form on the current page (a login page).
    pub async fn fill_login(&self, username: &str, password: &str) {
        self.type_into("#username", username).await;
        self.type_into("#password", password).await;
        self.click("form[action='/login'] button[type=submit]")
            .await;
    }

    pub async fn login(&self, base: &str, username: &str, password: &str) {
        self.goto(&format!("{base}/login")).await;
        self.fill_login(username, password).await;
        self.wait_for_path("/protected").await;
    }
}
