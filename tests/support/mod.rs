//! Test support: start the real `holdfast serve` on a free loopback port with a
//! temporary data dir, on SQLite or a scratch PostgreSQL database; HTTP and CLI
//! helpers; volume patterns.

#![allow(dead_code)] // each test module uses a different part of this

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

pub const BIN: &str = env!("CARGO_BIN_EXE_holdfast");
pub const PROJECT: &str = "0123456789abcdef0123456789abcdef";
pub const OTHER_PROJECT: &str = "fedcba9876543210fedcba9876543210";
pub const ADMIN_TOKEN: &str = "admin-token-of-the-tests";
pub const MEMBER_TOKEN: &str = "member-token-of-the-tests";
pub const READER_TOKEN: &str = "reader-token-of-the-tests";
pub const OTHER_TOKEN: &str = "member-token-of-another-project";
pub const MIB: usize = 1 << 20;

/// Which database a server runs on.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite,
    /// A scratch database on this server URL, created per server and dropped after.
    Postgres(String),
}

/// SQLite always; PostgreSQL when reachable. Under CI (`CI` set) PostgreSQL must be
/// reachable: a missing server fails the run instead of skipping silently.
pub fn databases() -> Vec<Database> {
    let url =
        std::env::var("HOLDFAST_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let probe = rt.block_on(async {
        let scratch = holdfast_db::create_scratch_postgres(&url).await?;
        holdfast_db::drop_scratch_postgres(&url, &scratch).await
    });
    match probe {
        Ok(()) => vec![Database::Sqlite, Database::Postgres(url)],
        Err(e) if std::env::var("CI").is_ok_and(|v| !v.is_empty()) => {
            panic!("CI is set but PostgreSQL at {url} is unusable: {e}")
        }
        Err(e) => {
            eprintln!("skipping PostgreSQL: {e}");
            vec![Database::Sqlite]
        }
    }
}

pub struct Server {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    pub db: Database,
    scratch: Option<String>,
    http: reqwest::blocking::Client,
}

impl Server {
    pub fn start(db: &Database, extra: &[&str]) -> Server {
        let dir = tempfile::Builder::new().prefix("holdfast-e2e").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        std::fs::create_dir_all(dir.path().join("volumes-in")).unwrap();
        let scratch = match db {
            Database::Sqlite => None,
            Database::Postgres(base) => {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                Some(rt.block_on(holdfast_db::create_scratch_postgres(base)).unwrap())
            }
        };
        Self::spawn(dir, db.clone(), scratch, extra)
    }

    fn spawn(dir: tempfile::TempDir, db: Database, scratch: Option<String>, extra: &[&str]) -> Server {
        // Token auth, as deployed by default: an admin, a member and a reader of PROJECT,
        // and a member of OTHER_PROJECT.
        let tokens = dir.path().join("tokens");
        std::fs::write(
            &tokens,
            format!(
                "{ADMIN_TOKEN} tester {PROJECT} admin\n{MEMBER_TOKEN} mia {PROJECT} member\n\
                 {READER_TOKEN} rita {PROJECT} reader\n{OTHER_TOKEN} otto {OTHER_PROJECT} member\n"
            ),
        )
        .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--token-file")
            .arg(&tokens)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen", "127.0.0.1:0", "--manage-root"])
            .arg(dir.path().join("volumes-in"))
            // One compile cache for the suite: a debug build compiles the driver in 2–3 s.
            .arg("--compile-cache")
            .arg(Path::new(env!("CARGO_TARGET_TMPDIR")).join("holdfast-compile-cache"))
            .args(extra)
            .env("HOLDFAST_LOG", "info,holdfast=debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap());
        if let Some(url) = &scratch {
            cmd.args(["--database-url", url]);
        }
        let mut child = cmd.spawn().expect("starting holdfast serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(u) = l.strip_prefix("holdfast listening on ") {
                        break u.to_owned();
                    }
                }
                _ => {
                    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                    panic!("holdfast serve exited before listening:\n{log}");
                }
            }
        };
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        Server { child, url, dir, db, scratch, http }
    }

    /// Stop the process with SIGKILL and start a new one on the same data and database.
    pub fn kill_and_restart(mut self, extra: &[&str]) -> Server {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let (db, scratch) = (self.db.clone(), self.scratch.take());
        Self::spawn(dir, db, scratch, extra)
    }

    /// Stop the server as an operator does (SIGTERM) and wait for it to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.child.wait().unwrap()
    }

    /// Kill the server process; its data dir stays until the `Server` is dropped.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Send the server process a signal (`libc::SIGHUP`, …).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0, "signalling the server");
    }

    /// The server process's peak resident memory so far, in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn backup_root(&self) -> PathBuf {
        self.dir.path().join("data").join("backups")
    }

    /// A path under the server's manage root.
    pub fn input(&self, name: &str) -> PathBuf {
        self.dir.path().join("volumes-in").join(name)
    }

    fn api(&self, path: &str) -> String {
        format!("{}/v3/{PROJECT}{path}", self.url)
    }

    pub fn request(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.request_as(ADMIN_TOKEN, method, path, body)
    }

    /// A request with another token (paths under PROJECT unless a full URL is given).
    pub fn request_as(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = if path.starts_with("http") { path.to_owned() } else { self.api(path) };
        let mut req = self
            .http
            .request(method.parse().unwrap(), url)
            .header("X-Auth-Token", token)
            // Holdfast's extra keys (host paths for admins); Cinder's exact views are
            // checked in tests that leave this out.
            .header("X-Holdfast-Extensions", "true")
            .header("OpenStack-API-Version", "volume 3.64");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().expect("request to holdfast");
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        let value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, value)
    }

    /// A GET as a stock Cinder client makes it: admin token, no Holdfast extensions.
    pub fn get_cinder(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.api(path))
            .header("X-Auth-Token", ADMIN_TOKEN)
            .header("OpenStack-API-Version", "volume 3.64")
            .send()
            .expect("request to holdfast");
        (r.status().as_u16(), r.json().unwrap_or(Value::Null))
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.request("GET", path, None)
    }

    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.request("POST", path, Some(body))
    }

    /// Run the CLI against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("HOLDFAST_URL", &self.url)
            .env("HOLDFAST_PROJECT", PROJECT)
            .env("HOLDFAST_TOKEN", ADMIN_TOKEN)
            .output()
            .expect("running the holdfast CLI")
    }

    /// Start the CLI against this server without waiting (stdout piped), e.g. `event watch`.
    pub fn cli_spawn(&self, args: &[&str]) -> Child {
        Command::new(BIN)
            .args(args)
            .env("HOLDFAST_URL", &self.url)
            .env("HOLDFAST_PROJECT", PROJECT)
            .env("HOLDFAST_TOKEN", ADMIN_TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the holdfast CLI")
    }

    /// Run the CLI and parse its `--format json` output; panics with stderr on failure.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        assert!(out.status.success(), "holdfast {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// Register a raw file as a volume (HTTP) and return its id.
    pub fn register(&self, path: &Path, name: &str) -> String {
        let (s, v) =
            self.post("/os-volume-manage", serde_json::json!({"volume": {"ref": {"source-name": path}, "name": name}}));
        assert_eq!(s, 202, "{v}");
        v["volume"]["id"].as_str().unwrap().to_owned()
    }

    /// A raw file of mixed data (see [`write_mixed_volume`]) under the manage root,
    /// registered as volume `name`: returns its path and the volume id.
    pub fn mixed_volume(&self, name: &str, size: usize, seed: u64) -> (PathBuf, String) {
        let path = self.input(&format!("{name}.raw"));
        write_mixed_volume(&path, size, seed);
        let id = self.register(&path, name);
        (path, id)
    }

    pub fn backup(&self, id: &str) -> Value {
        let (s, v) = self.get(&format!("/backups/{id}"));
        assert_eq!(s, 200, "{v}");
        v["backup"].clone()
    }

    pub fn volume(&self, id: &str) -> Value {
        let (s, v) = self.get(&format!("/volumes/{id}"));
        assert_eq!(s, 200, "{v}");
        v["volume"].clone()
    }

    /// Poll the backup until its status is one of `want` (or time out).
    pub fn wait_backup(&self, id: &str, want: &[&str]) -> Value {
        let t = Instant::now();
        loop {
            let b = self.backup(id);
            if want.contains(&b["status"].as_str().unwrap_or("")) {
                return b;
            }
            assert!(t.elapsed() < Duration::from_secs(120), "backup {id} stuck in {}:\n{}", b["status"], self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait (at most 30 s) until `GET path` answers 404: a delete has finished.
    pub fn wait_gone(&self, path: &str) {
        let t = Instant::now();
        while self.get(path).0 != 404 {
            assert!(t.elapsed() < Duration::from_secs(30), "{path} is still there:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_volume(&self, id: &str, want: &[&str]) -> Value {
        let t = Instant::now();
        loop {
            let v = self.volume(id);
            if want.contains(&v["status"].as_str().unwrap_or("")) {
                return v;
            }
            assert!(t.elapsed() < Duration::from_secs(120), "volume {id} stuck in {}:\n{}", v["status"], self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let (Database::Postgres(base), Some(url)) = (&self.db, &self.scratch) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let _ = rt.block_on(holdfast_db::drop_scratch_postgres(base, url));
        }
        if std::thread::panicking() {
            eprintln!("--- server log ---\n{}", self.log());
        }
    }
}

/// Wait until `cond` holds (or fail after 60 s), polling every 2 ms.
pub fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `{"backup": {...}}` → `{...}`: the CLI prints Cinder's envelopes.
pub fn single(v: Value) -> Value {
    match v.as_object() {
        Some(o) if o.len() == 1 => o.values().next().cloned().unwrap_or(Value::Null),
        _ => v,
    }
}

/// A test volume: 4 MiB runs cycling random, zeros and a compressible pattern.
pub fn write_mixed_volume(path: &Path, size: usize, seed: u64) {
    let mut f = std::fs::File::create(path).unwrap();
    let mut x = seed | 1;
    let mut buf = vec![0u8; 4 * MIB];
    for run in 0..size / (4 * MIB) {
        match run % 3 {
            0 => {
                for c in buf.chunks_exact_mut(8) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    c.copy_from_slice(&x.to_le_bytes());
                }
            }
            1 => buf.fill(0),
            _ => {
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = b"holdfast keeps your volumes "[(i + run) % 28];
                }
            }
        }
        f.write_all(&buf).unwrap();
    }
    f.sync_all().unwrap();
}

/// Read in pieces: volumes of several GiB need not fit in memory.
pub fn sha256_file(path: &Path) -> String {
    use std::io::Read;
    let mut f = std::fs::File::open(path).unwrap();
    let (mut h, mut buf) = (Sha256::new(), vec![0u8; 4 << 20]);
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex(&h.finalize())
}

pub fn sha256_bytes(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every file under `dir`, relative paths.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
