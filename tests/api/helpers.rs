//! `spawn_app()` and a cookie-keeping client that never follows redirects.

use std::{
    collections::HashMap,
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use portcullis::{
    clock::OffsetClock,
    config::{Config, DatabaseUrl},
    db::DbConn,
    startup::{Application, Options},
};
use reqwest::{Response, StatusCode, cookie::CookieStore, header};
use serde_json::Value;

#[path = "../support/pg.rs"]
mod pg;

#[path = "../support/jwt.rs"]
pub mod jwt;

pub const SECRET: &str = "test-secret-key-that-is-at-least-32-bytes!";
/// Not on any common-password list, and valid for every username used here.
pub const PASSWORD: &str = "Tr0ub4dor&3-horse";

pub struct TestApp {
    pub addr: String,
    /// `DATABASE_URL` as the app got it: a SQLite path, or a fresh
    /// PostgreSQL database when `PORTCULLIS_TEST_DATABASE_URL` is set.
    pub database_url: String,
    /// The default browser-like client.
    pub client: Client,
    /// The app's clock: `app.clock.advance(secs)` moves time for the server.
    pub clock: Arc<OffsetClock>,
    /// `http://127.0.0.1:PORT/metrics` when `METRICS_BIND_ADDR` was set.
    pub metrics_url: Option<String>,
    _dir: tempfile::TempDir,
}

/// Settings as a test sees them: a temp database, a fast bcrypt, a fixed key.
fn test_settings(dir: &tempfile::TempDir, overrides: &[(&str, &str)]) -> HashMap<String, String> {
    let database_url = match pg::base_url() {
        Some(base) => pg::fresh_database(&base),
        None => dir.path().join("test.db").display().to_string(),
    };
    let mut settings: HashMap<String, String> = [
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        ("DATABASE_URL", database_url),
        ("JWT_SECRET_KEY", SECRET.to_owned()),
        ("BCRYPT_COST", "4".to_owned()),
        // Every test client is 127.0.0.1: the per-client limits are for the
        // tests of the limits, which set them low again.
        ("REGISTER_MAX_PER_IP", "100000".to_owned()),
        ("LOGIN_MAX_FAILURES_PER_IP", "100000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in overrides {
        settings.insert(k.to_string(), v.to_string());
    }
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    spawn_app_with_routes(overrides, None).await
}

/// The app with extra routes served through its own middleware stack.
pub async fn spawn_app_with_routes(
    overrides: &[(&str, &str)],
    extra_routes: Option<fn(&mut actix_web::web::ServiceConfig)>,
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = test_settings(&dir, overrides);
    let mut config = Config::from_lookup(|k| settings.get(k).cloned()).expect("test config");
    config.workers = Some(2);
    let database_url = settings["DATABASE_URL"].clone();
    let clock = OffsetClock::new();
    let options = Options {
        clock: clock.clone(),
        extra_routes,
    };
    let app = Application::build_with(config, options).expect("app builds");
    let addr = format!("http://127.0.0.1:{}", app.port());
    let metrics_url = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}/metrics"));
    actix_web::rt::spawn(app.into_server());
    TestApp {
        client: Client::new(&addr),
        addr,
        database_url,
        clock,
        metrics_url,
        _dir: dir,
    }
}

impl TestApp {
    /// A direct connection to the app's database.
    pub fn db(&self) -> DbConn {
        portcullis::db::connect(&DatabaseUrl::parse(&self.database_url))
            .expect("the database opens")
    }

    /// Another browser, with its own cookie jar.
    pub fn new_client(&self) -> Client {
        Client::new(&self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    /// Registers through the JSON API and returns the new user's id.
    pub async fn api_register(&self, username: &str, password: &str) -> Response {
        self.client
            .http
            .post(self.url("/register"))
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .await
            .expect("request")
    }

    pub async fn api_login(&self, username: &str, password: &str) -> Response {
        self.client
            .http
            .post(self.url("/login"))
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .await
            .expect("request")
    }

    /// Registers and logs in through the API; returns (access, refresh).
    pub async fn api_user(&self, username: &str) -> (String, String) {
        assert_eq!(
            self.api_register(username, PASSWORD).await.status(),
            StatusCode::CREATED
        );
        let body: Value = self
            .api_login(username, PASSWORD)
            .await
            .json()
            .await
            .expect("json");
        (
            body["access_token"].as_str().expect("access").to_owned(),
            body["refresh_token"].as_str().expect("refresh").to_owned(),
        )
    }

    pub async fn bearer_get(&self, path: &str, token: &str) -> Response {
        self.client
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn bearer_post(&self, path: &str, token: &str) -> Response {
        self.client
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// A browser that registered `username` (a plain user) and is logged in.
    pub async fn logged_in_user(&self, username: &str) -> Client {
        let client = self.new_client();
        let res = client.register(username, PASSWORD).await;
        assert_redirect_to(&res, "/protected");
        client
    }

    /// Runs the real binary's `create-admin` against this app's database.
    pub fn create_admin(&self, username: &str, password: &str) -> std::process::Output {
        run_cli(
            &self.database_url,
            &["create-admin", username],
            Some(password),
        )
    }

    /// Creates an admin through the CLI, failing the test if that fails.
    pub fn admin_exists(&self, username: &str) {
        let out = self.create_admin(username, PASSWORD);
        assert!(
            out.status.success(),
            "create-admin failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A browser logged in as a new admin.
    pub async fn logged_in_admin(&self, username: &str) -> Client {
        self.admin_exists(username);
        let client = self.new_client();
        let res = client.login(username, PASSWORD).await;
        assert_redirect_to(&res, "/protected");
        client
    }
}

/// How many live sessions (refresh families) the user has in the database.
pub fn live_sessions(app: &TestApp, user_id: i32) -> usize {
    let mut conn = app.db();
    use portcullis::clock::Clock;
    let now = app.clock.now();
    portcullis::db::sessions::active(&mut conn, user_id, now)
        .unwrap()
        .len()
}

/// The user's role and whether they are disabled, as the database has them.
pub fn role_and_status(app: &TestApp, user_id: i32) -> (String, bool) {
    use diesel::{
        RunQueryDsl,
        sql_types::{Bool, Text},
    };
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        role: String,
        #[diesel(sql_type = Bool)]
        disabled: bool,
    }
    let mut conn = app.db();
    let row = diesel::sql_query(format!(
        "SELECT role, disabled FROM users WHERE id = {user_id}"
    ))
    .get_result::<Row>(&mut conn)
    .expect("the user exists");
    (row.role, row.disabled)
}

/// Runs the `portcullis` binary with this database, feeding `stdin`.
pub fn run_cli(db: &str, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env_clear()
        .env("DATABASE_URL", db)
        .env("BCRYPT_COST", "4")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary runs");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        // The binary may exit before reading (e.g. an invalid username).
        let _ = writeln!(pipe, "{input}");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("binary exits")
}

/// A browser-like client: keeps cookies, never follows redirects.
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
}

impl Client {
    pub fn new(base: &str) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36")
            .build()
            .expect("client");
        Self {
            base: base.to_owned(),
            http,
            jar,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).send().await.expect("request")
    }

    /// Fetches a page and returns the CSRF token from its `<meta>`.
    pub async fn csrf_token(&self) -> String {
        let html = self.get("/login").await.text().await.expect("body");
        meta_csrf(&html).expect("csrf meta tag")
    }

    /// Posts a form with the session's CSRF token added.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let token = self.csrf_token().await;
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf_token", &token));
        self.post_form_raw(path, &all).await
    }

    /// Posts a form exactly as given (no CSRF token added).
    pub async fn post_form_raw(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.http
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .expect("request")
    }

    pub async fn register(&self, username: &str, password: &str) -> Response {
        self.post_form(
            "/register",
            &[
                ("username", username),
                ("password", password),
                ("password_confirm", password),
            ],
        )
        .await
    }

    /// Submits the change-password form (with a fresh CSRF token).
    pub async fn change_password(&self, current: &str, new: &str) -> Response {
        self.post_form(
            "/account/password",
            &[
                ("current_password", current),
                ("new_password", new),
                ("new_password_confirm", new),
            ],
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post_form("/login", &[("username", username), ("password", password)])
            .await
    }

    /// The value of a cookie the jar would send to the app.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let url = self.base.parse().expect("url");
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }

    /// Puts a cookie in the jar as if the server had set it.
    pub fn set_cookie(&self, name: &str, value: &str) {
        let url = self.base.parse().expect("url");
        self.jar
            .add_cookie_str(&format!("{name}={value}; Path=/"), &url);
    }
}

pub fn meta_csrf(html: &str) -> Option<String> {
    let start = html.find("<meta name=\"csrf-token\" content=\"")?
        + "<meta name=\"csrf-token\" content=\"".len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

pub fn location(res: &Response) -> Option<&str> {
    res.headers().get(header::LOCATION)?.to_str().ok()
}

#[track_caller]
pub fn assert_redirect_to(res: &Response, expected: &str) {
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "expected a 303 to {expected}"
    );
    assert_eq!(location(res), Some(expected));
}

/// One `Set-Cookie` header, parsed: name, value and attributes (lower-cased names).
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    pub attributes: HashMap<String, String>,
}

impl SetCookie {
    pub fn has(&self, attribute: &str) -> bool {
        self.attributes
            .contains_key(&attribute.to_ascii_lowercase())
    }

    pub fn get(&self, attribute: &str) -> Option<&str> {
        self.attributes
            .get(&attribute.to_ascii_lowercase())
            .map(String::as_str)
    }
}

pub fn set_cookies(res: &Response) -> Vec<SetCookie> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|raw| {
            let mut parts = raw.split(';').map(str::trim);
            let (name, value) = parts.next()?.split_once('=')?;
            let attributes = parts
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.to_ascii_lowercase(), v.to_owned()),
                    None => (p.to_ascii_lowercase(), String::new()),
                })
                .collect();
            Some(SetCookie {
                name: name.to_owned(),
                value: value.to_owned(),
                attributes,
            })
        })
        .collect()
}

pub fn set_cookie(res: &Response, name: &str) -> Option<SetCookie> {
    set_cookies(res).into_iter().find(|c| c.name == name)
}

/// A port that was free a moment ago. Another process may take it before the
/// child we hand it to binds it: callers check with `listens_on` and retry.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How many ports a child server is tried on before giving up.
pub const PORT_ATTEMPTS: usize = 5;

/// Whether process `pid` itself holds a listening TCP socket on `port`: an
/// answer on the port may come from whoever took it first. Matches the
/// socket inodes of `/proc/PID/fd` against `/proc/PID/net/tcp{,6}`; where
/// there is no `/proc`, it cannot tell and says yes.
pub fn listens_on(pid: u32, port: u16) -> bool {
    if !Path::new("/proc/self/fd").exists() {
        return true;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let sockets: std::collections::HashSet<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    let suffix = format!(":{port:04X}");
    ["tcp", "tcp6"].iter().any(|table| {
        std::fs::read_to_string(format!("/proc/{pid}/net/{table}"))
            .unwrap_or_default()
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .any(|f| {
                // local_address, state (0A = LISTEN), inode
                f.len() > 9 && f[1].ends_with(&suffix) && f[3] == "0A" && sockets.contains(f[9])
            })
    })
}

pub fn binary(cwd: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.current_dir(cwd)
        .env_clear()
        .env("BCRYPT_COST", "4")
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs the binary expecting it to refuse to start.
pub fn refuses(cwd: &Path, env: &[(&str, &str)]) -> Output {
    let out = binary(cwd, env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success(), "should refuse to start with {env:?}");
    out
}

/// The real binary serving on a free port, killed when dropped.
pub struct BinaryServer {
    pub child: Child,
    pub base: String,
}

impl BinaryServer {
    pub async fn start(cwd: &Path, env: &[(&str, &str)]) -> BinaryServer {
        Self::start_logging_to(cwd, env, None).await
    }

    /// Starts the binary, writing everything it prints to `log` if given.
    ///
    /// The port is chosen here and bound by the child, so another process may
    /// take it in between: then the child exits (it cannot bind) or the
    /// health check is answered by the other process. Either way the child
    /// is started again on a new port, a few times at most.
    pub async fn start_logging_to(
        cwd: &Path,
        env: &[(&str, &str)],
        log: Option<&Path>,
    ) -> BinaryServer {
        let mut failures = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let bind = format!("127.0.0.1:{port}");
            let mut all = vec![("BIND_ADDR", bind.as_str())];
            all.extend_from_slice(env);
            let (stdout, stderr) = match log {
                Some(path) => {
                    let file = std::fs::File::create(path).unwrap();
                    (Stdio::from(file.try_clone().unwrap()), Stdio::from(file))
                }
                None => (Stdio::null(), Stdio::null()),
            };
            let mut child = binary(cwd, &all)
                .stdout(stdout)
                .stderr(stderr)
                .spawn()
                .unwrap();
            let base = format!("http://{bind}");
            match wait_until_serving(&mut child, &base, port).await {
                Ok(()) => return BinaryServer { child, base },
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    failures.push(format!("port {port}: {why}"));
                }
            }
        }
        panic!("server did not start: {failures:?}");
    }

    /// `POST` a JSON body, as an API client would.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> Response {
        reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Logs in through the JSON API and returns the token pair's body.
    pub async fn api_login(&self, username: &str, password: &str) -> Value {
        let res = self
            .post_json(
                "/login",
                &serde_json::json!({ "username": username, "password": password }),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.expect("json")
    }

    /// `POST` with `Authorization: Bearer`.
    pub async fn bearer_post(&self, path: &str, token: &str) -> Response {
        reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`) and waits for the exit.
    pub fn stop(mut self, signal: &str) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

/// Waits until `child` answers `/healthz` on `port` itself. `Err` when the
/// port turned out to be taken or the child exited; panics after 20 s.
async fn wait_until_serving(child: &mut Child, base: &str, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("exited early ({status})"));
        }
        // Bounded: whoever took the port may accept and never answer.
        let health = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap()
            .get(format!("{base}/healthz"))
            .send()
            .await;
        if let Ok(res) = health
            && res.status() == StatusCode::OK
        {
            if listens_on(child.id(), port) {
                return Ok(());
            }
            return Err("answered by another process".into());
        }
        assert!(Instant::now() < deadline, "server did not start on {base}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
