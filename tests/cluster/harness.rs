//! Real processes for the cluster tests: instances of the built binary,
//! nginx with deploy/nginx.conf, throwaway PostgreSQL clusters from
//! scripts/pg-cluster. Everything is stopped on drop; logs are printed when a
//! test fails.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::pg;

pub const SECRET: &str = "cluster-test-secret-key-of-at-least-32-bytes";
pub const PASSWORD: &str = "Tr0ub4dor&3-horse";
pub const NGINX: &str = "/usr/sbin/nginx";
const START_ATTEMPTS: usize = 5;
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn flag(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

/// The base URL of the test cluster (`PORTCULLIS_TEST_DATABASE_URL`);
/// `None`, after saying why, when there is none and none is required.
pub fn test_cluster(test: &str) -> Option<String> {
    let base = pg::base_url();
    if base.is_none() {
        eprintln!(
            "SKIPPED cluster test {test}: set {}=postgres://postgres@127.0.0.1:PORT \
             (scripts/pg-cluster start DIR PORT prints it)",
            pg::BASE_URL_VAR
        );
    }
    base
}

/// Whether nginx can be used; says why not (or panics when it is required).
pub fn nginx_available(test: &str) -> bool {
    if Path::new(NGINX).exists() {
        return true;
    }
    assert!(
        !flag("PORTCULLIS_REQUIRE_NGINX"),
        "PORTCULLIS_REQUIRE_NGINX=1 but {NGINX} is missing (apt-get install nginx)"
    );
    eprintln!("SKIPPED cluster test {test}: {NGINX} is missing (apt-get install nginx)");
    false
}

/// A port that was free a moment ago; whoever binds it checks `listens_on`.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Whether process `pid` itself holds a listening TCP socket on `port`
/// (another process may have taken the port first and answer on it).
fn listens_on(pid: u32, port: u16) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let sockets: std::collections::HashSet<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|t| {
            let t = t.to_str()?;
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let suffix = format!(":{port:04X}");
    std::fs::read_to_string(format!("/proc/{pid}/net/tcp"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .any(|f| f.len() > 9 && f[1].ends_with(&suffix) && f[3] == "0A" && sockets.contains(f[9]))
}

/// Waits until `child` answers `GET /healthz` on `port` itself. `Err` when
/// the child exited or another process answers.
async fn wait_healthy(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Err(format!("exited early ({status})"));
        }
        let health = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await;
        if let Ok(res) = health
            && res.status() == StatusCode::OK
        {
            return if listens_on(child.id(), port) {
                Ok(())
            } else {
                Err("answered by another process".into())
            };
        }
        if Instant::now() > deadline {
            return Err(format!("no 200 from /healthz within {START_TIMEOUT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `signal` to `child`, waits up to `grace` for it to exit, then kills it.
fn stop_child(child: &mut Child, signal: i32, grace: Duration) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid, signal) };
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// One `portcullis` process.
pub struct Instance {
    pub name: String,
    pub base: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Instance {
    pub async fn start(dir: &Path, name: &str, database_url: &str, env: &[(&str, &str)]) -> Self {
        let log = dir.join(format!("{name}.log"));
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let file = std::fs::File::create(&log).expect("log file");
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
            cmd.current_dir(dir)
                .env_clear()
                .env("DATABASE_URL", database_url)
                .env("JWT_SECRET_KEY", SECRET)
                .env("BCRYPT_COST", "4")
                .env("BIND_ADDR", format!("127.0.0.1:{port}"))
                .env("TRUSTED_PROXIES", "127.0.0.1")
                .env("RUST_LOG", "info")
                .env("REGISTER_MAX_PER_IP", "100000")
                .env("LOGIN_MAX_FAILURES_PER_IP", "100000");
            for (k, v) in env {
                cmd.env(k, v);
            }
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(file.try_clone().expect("log file"))
                .stderr(file)
                .spawn()
                .expect("the portcullis binary runs");
            match wait_healthy(&mut child, port).await {
                Ok(()) => {
                    return Instance {
                        name: name.to_owned(),
                        base: format!("http://127.0.0.1:{port}"),
                        child,
                        log,
                    };
                }
                Err(why) => {
                    stop_child(&mut child, libc::SIGKILL, Duration::ZERO);
                    failures.push(format!(
                        "port {port}: {why}\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    ));
                }
            }
        }
        panic!("instance {name} did not start:\n{}", failures.join("\n"));
    }

    pub fn port(&self) -> u16 {
        self.base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in base URL")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        stop_child(&mut self.child, libc::SIGKILL, Duration::ZERO);
        if std::thread::panicking() {
            eprintln!(
                "--- instance {} ({}) log\n{}",
                self.name,
                self.base,
                self.log_text()
            );
        }
    }
}

/// nginx from deploy/nginx.conf, in front of the given instances.
pub struct Nginx {
    pub base: String,
    pub child: Child,
    pub prefix: PathBuf,
}

impl Nginx {
    /// deploy/nginx.conf as shipped, with only its listen port, its two
    /// upstream ports and its runtime paths (logs, temp files, pid) changed.
    pub fn config(listen: u16, upstreams: [u16; 2], prefix: &Path) -> String {
        let shipped =
            std::fs::read_to_string(repo_file("deploy/nginx.conf")).expect("deploy/nginx.conf");
        let prefix = format!("{}/", prefix.display());
        let swaps = [
            ("listen 80;", format!("listen 127.0.0.1:{listen};")),
            (
                "server 127.0.0.1:8081;",
                format!("server 127.0.0.1:{};", upstreams[0]),
            ),
            (
                "server 127.0.0.1:8082;",
                format!("server 127.0.0.1:{};", upstreams[1]),
            ),
            ("/var/log/nginx/", prefix.clone()),
            ("/var/lib/nginx/", prefix),
        ];
        let mut config = shipped;
        for (from, to) in swaps {
            assert!(
                config.contains(from),
                "deploy/nginx.conf no longer contains {from:?}: update tests/cluster"
            );
            config = config.replace(from, &to);
        }
        config
    }

    pub async fn start(dir: &Path, upstreams: [&Instance; 2]) -> Self {
        let prefix = dir.join("nginx");
        std::fs::create_dir_all(&prefix).expect("nginx dir");
        // nginx's workers run as another user when nginx is started as root:
        // they must reach the temp directories under the prefix.
        for d in [dir, &prefix] {
            let world = std::os::unix::fs::PermissionsExt::from_mode(0o755);
            std::fs::set_permissions(d, world).expect("chmod");
        }
        let ports = [upstreams[0].port(), upstreams[1].port()];
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let conf = prefix.join("nginx.conf");
            std::fs::write(&conf, Self::config(port, ports, &prefix)).expect("write nginx.conf");
            let out = std::fs::File::create(prefix.join("stderr.log")).expect("log");
            let mut child = Command::new(NGINX)
                .arg("-p")
                .arg(&prefix)
                .arg("-c")
                .arg(&conf)
                .arg("-g")
                .arg(format!("daemon off; pid {}/nginx.pid;", prefix.display()))
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("log"))
                .stderr(out)
                .spawn()
                .expect("nginx runs");
            match wait_healthy(&mut child, port).await {
                Ok(()) => {
                    return Nginx {
                        base: format!("http://127.0.0.1:{port}"),
                        child,
                        prefix,
                    };
                }
                Err(why) => {
                    stop_child(&mut child, libc::SIGTERM, Duration::from_secs(5));
                    failures.push(format!("port {port}: {why}\n{}", nginx_logs(&prefix)));
                }
            }
        }
        panic!("nginx did not start:\n{}", failures.join("\n"));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn nginx_logs(prefix: &Path) -> String {
    ["stderr.log", "error.log"]
        .iter()
        .map(|f| {
            format!(
                "--- nginx {f}\n{}",
                std::fs::read_to_string(prefix.join(f)).unwrap_or_default()
            )
        })
        .collect()
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers before it exits.
        stop_child(&mut self.child, libc::SIGTERM, Duration::from_secs(5));
    }
}

/// Two instances on one database, and nginx in front of them when asked for.
pub struct Stack {
    pub a: Instance,
    pub b: Instance,
    pub nginx: Option<Nginx>,
    // Dropped last: the processes above write into it.
    _dir: tempfile::TempDir,
}

impl Stack {
    /// Two instances on a fresh database of the cluster at `base`.
    pub async fn start(base: &str, env: &[(&str, &str)], with_nginx: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = pg::fresh_database(base);
        let a = Instance::start(dir.path(), "a", &url, env).await;
        let b = Instance::start(dir.path(), "b", &url, env).await;
        let nginx = if with_nginx {
            Some(Nginx::start(dir.path(), [&a, &b]).await)
        } else {
            None
        };
        Stack {
            a,
            b,
            nginx,
            _dir: dir,
        }
    }

    pub fn nginx(&self) -> &Nginx {
        self.nginx.as_ref().expect("started with nginx")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // The instances print their own logs.
        if std::thread::panicking()
            && let Some(n) = &self.nginx
        {
            eprintln!("{}", nginx_logs(&n.prefix));
        }
    }
}

/// A throwaway PostgreSQL cluster of its own (scripts/pg-cluster), stopped on drop.
pub struct PgCluster {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub base: String,
}

impl PgCluster {
    /// Whether the PostgreSQL server binaries are installed; says why not
    /// (or panics when PostgreSQL is required).
    pub fn available(test: &str) -> bool {
        let found = std::fs::read_dir("/usr/lib/postgresql")
            .map(|versions| {
                versions
                    .filter_map(Result::ok)
                    .any(|v| v.path().join("bin/initdb").exists())
            })
            .unwrap_or(false);
        if !found {
            assert!(
                !pg::required(),
                "{}=1 but no PostgreSQL server binaries in /usr/lib/postgresql/*/bin \
                 (apt-get install postgresql)",
                pg::REQUIRE_VAR
            );
            eprintln!(
                "SKIPPED cluster test {test}: no PostgreSQL server binaries \
                 (apt-get install postgresql)"
            );
        }
        found
    }

    pub fn start() -> Self {
        let mut cluster = PgCluster {
            dir: tempfile::tempdir().expect("temp dir"),
            port: 0,
            base: String::new(),
        };
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            // Another process may take the port first: then try another one
            // (the cluster, once created, is reused).
            cluster.port = free_port();
            match cluster.run(&["start", &cluster.port.to_string()]) {
                Ok(base) => {
                    cluster.base = base;
                    return cluster;
                }
                Err(why) => failures.push(format!("port {}: {why}", cluster.port)),
            }
        }
        panic!(
            "no throwaway PostgreSQL cluster started:\n{}",
            failures.join("\n")
        );
    }

    fn run(&self, args: &[&str]) -> Result<String, String> {
        let dir = self.dir.path().display().to_string();
        let mut all = vec![args[0], dir.as_str()];
        all.extend_from_slice(&args[1..]);
        let out = Command::new(repo_file("scripts/pg-cluster"))
            .args(&all)
            .output()
            .map_err(|e| format!("scripts/pg-cluster: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    pub fn stop(&self) {
        self.run(&["stop"]).expect("pg-cluster stop");
    }

    /// Starts it again on the same port.
    pub fn restart(&self) {
        self.run(&["start", &self.port.to_string()])
            .expect("pg-cluster start again");
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.run(&["stop"]);
    }
}

/// An HTTP client that keeps cookies and never follows redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// A plain API client (no cookies, no redirects); with `from`, it connects
/// from that local address (another loopback address is another client as
/// far as nginx can tell).
pub fn api_client(from: Option<Ipv4Addr>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60));
    if let Some(ip) = from {
        builder = builder.local_address(IpAddr::V4(ip));
    }
    builder.build().expect("client")
}

/// A token pair as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub access: String,
    pub refresh: String,
}

impl Pair {
    pub fn from_json(body: &Value) -> Pair {
        Pair {
            access: body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            refresh: body["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
        }
    }
}

pub async fn register(http: &reqwest::Client, base: &str, username: &str) {
    let res = http
        .post(format!("{base}/register"))
        .json(&json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::CREATED, "register {username}");
}

pub async fn login(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    http.post(format!("{base}/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("request")
}

pub async fn login_pair(http: &reqwest::Client, base: &str, username: &str) -> Pair {
    let res = login(http, base, username, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK, "login {username} on {base}");
    Pair::from_json(&res.json().await.expect("json"))
}

pub async fn bearer_post(http: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    http.post(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

pub async fn bearer_get(http: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

/// Logs `username` in with the login form, as a browser does: the form's
/// CSRF token and the session cookie from `GET /login`, then the `POST`.
pub async fn form_login(browser: &reqwest::Client, base: &str, username: &str) {
    let res = browser
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK, "GET /login");
    let html = res.text().await.expect("body");
    let csrf = form_csrf(&html).expect("csrf_token in the login form");
    let res = browser
        .post(format!("{base}/login"))
        .form(&[
            ("username", username),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "form login");
    assert_eq!(
        res.headers()
            .get(reqwest::header::LOCATION)
            .map(|v| v.as_bytes()),
        Some(&b"/protected"[..])
    );
    let names = cookie_names(&res);
    assert!(
        names.iter().any(|n| n.ends_with("access_token"))
            && names.iter().any(|n| n.ends_with("refresh_token")),
        "token cookies set: {names:?}"
    );
}

/// The hidden `csrf_token` of the first form on a page.
pub fn form_csrf(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf_token\"")?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + "value=\"".len();
    let len = tag[v..].find('"')?;
    Some(tag[v..v + len].to_owned())
}

/// Every `Set-Cookie` of a response, by name.
pub fn cookie_names(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split('=').next().map(str::to_owned))
        .collect()
}

/// How many requests for `method path` the instance's request log shows.
pub fn logged_requests(instance: &Instance, method: &str, path: &str) -> usize {
    let needle = format!("method={method} path={path} ");
    instance
        .log_text()
        .lines()
        .filter(|l| l.contains(&needle))
        .count()
}
