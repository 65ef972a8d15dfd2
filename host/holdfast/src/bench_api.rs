//! `holdfast bench --api`: how fast the backup list answers at scale. A database
//! of `--api-backups` backups (100,000 by default) in one project, a real `holdfast
//! serve` child process on it, four 1 GiB backups running in that server, and this
//! process as the load tool on loopback: `GET /backups/detail?limit=1000` (the first
//! page) and a page deep in the list (a marker near the end), timed per request from
//! sending it to the last byte of the reply.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use holdfast_db::Db;
use holdfast_types::{Backup, BackupStatus, GIB, Timestamp};
use serde_json::{Value, json};

const PROJECT: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "bench-admin-token";

struct Child_(Child);

impl Drop for Child_ {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn row(i: usize, base: i64) -> Backup {
    Backup {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: PROJECT.into(),
        user_id: "bench".into(),
        volume_id: uuid::Uuid::new_v4().to_string(),
        snapshot_id: None,
        status: BackupStatus::Available,
        display_name: Some(format!("nightly-{i}")),
        display_description: Some("benchmark row".into()),
        size: 1,
        size_bytes: GIB,
        object_count: 128,
        container: Some("c".into()),
        service: Some("cinder.backup.drivers.posix.PosixBackupDriver".into()),
        service_metadata: Some(format!("volume_x_backup_{i}")),
        parent_id: None,
        num_dependent_backups: 0,
        availability_zone: Some("nova".into()),
        host: Some("bench".into()),
        fail_reason: None,
        restore_volume_id: None,
        data_timestamp: Some(Timestamp(base + i as i64)),
        created_at: Timestamp(base + i as i64 * 1000),
        updated_at: None,
        deleted_at: None,
        deleted: false,
    }
}

/// What the load backups have done so far, updated by [`keep_backing_up`].
#[derive(Default)]
struct Load {
    /// Backups in `creating` right now.
    running: AtomicUsize,
    /// Backups that ended `available`.
    finished: AtomicUsize,
    /// Volume bytes processed by all load backups, finished ones included.
    bytes_done: AtomicU64,
}

/// Keep one full backup of each volume running until `stop`, reporting into `load`.
fn keep_backing_up(url: &str, volumes: &[String], stop: &AtomicBool, load: &Load) -> Result<()> {
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let req = |m: reqwest::Method, path: &str| {
        http.request(m, format!("{url}/v3/{PROJECT}{path}"))
            .header("X-Auth-Token", TOKEN)
            .header("OpenStack-API-Version", "volume 3.64")
    };
    let mut current: Vec<Option<String>> = vec![None; volumes.len()];
    while !stop.load(Ordering::Relaxed) {
        let mut now_running = 0;
        let mut in_flight = 0u64;
        for (vol, slot) in volumes.iter().zip(current.iter_mut()) {
            let status = match slot {
                Some(id) => {
                    req(reqwest::Method::GET, &format!("/backups/{id}")).send()?.json::<Value>()?["backup"]["status"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned()
                }
                None => String::new(),
            };
            match status.as_str() {
                "creating" => {
                    now_running += 1;
                    let id = slot.as_deref().unwrap_or_default();
                    let p: Value = req(reqwest::Method::GET, &format!("/backups/{id}/progress")).send()?.json()?;
                    in_flight += p["progress"]["bytes_done"].as_u64().unwrap_or(0);
                }
                "error" => bail!("a load backup failed"),
                other => {
                    if other == "available" {
                        load.finished.fetch_add(1, Ordering::Relaxed);
                    }
                    let b: Value = req(reqwest::Method::POST, "/backups")
                        .json(&json!({"backup": {"volume_id": vol}}))
                        .send()?
                        .json()?;
                    *slot = Some(b["backup"]["id"].as_str().context("backup id")?.to_owned());
                    now_running += 1;
                }
            }
        }
        load.running.store(now_running, Ordering::Relaxed);
        let finished = load.finished.load(Ordering::Relaxed) as u64;
        load.bytes_done.store(finished * GIB + in_flight, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn run(dir: &Path, backups: usize, requests: usize) -> Result<()> {
    let data = dir.join("data");
    let inputs = dir.join("in");
    std::fs::create_dir_all(&data)?;
    std::fs::create_dir_all(&inputs)?;
    let db_url = format!("sqlite://{}", data.join("holdfast.db").display());
    let rt = tokio::runtime::Runtime::new()?;
    let t = Instant::now();
    let base = Timestamp::now().micros() - backups as i64 * 1000;
    rt.block_on(async {
        let db = Db::connect(&db_url).await?;
        let rows: Vec<Backup> = (0..backups).map(|i| row(i, base)).collect();
        for chunk in rows.chunks(10_000) {
            db.insert_backups(chunk).await?;
        }
        anyhow::Ok(())
    })?;
    println!("database: {backups} backups inserted in {:.1} s", t.elapsed().as_secs_f64());

    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{TOKEN} bench {PROJECT} admin\n"))?;
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--max-operations", "4"])
        .args(["--quota-backups", "-1", "--quota-backup-gigabytes", "-1"])
        .arg("--data-dir")
        .arg(&data)
        .arg("--token-file")
        .arg(&tokens)
        .arg("--manage-root")
        .arg(&inputs)
        .env("HOLDFAST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting holdfast serve")?;
    let stdout = child.stdout.take().context("server stdout")?;
    let server = Child_(child);
    let url = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("holdfast listening on ").map(str::to_owned))
        .context("the server exited before listening")?;
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let api = |path: &str| format!("{url}/v3/{PROJECT}{path}");
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| -> Result<Value> {
        let mut req = http
            .request(method, api(path))
            .header("X-Auth-Token", TOKEN)
            .header("OpenStack-API-Version", "volume 3.64");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send()?;
        let status = r.status();
        let v: Value = r.json().unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path}: {status} {v}");
        }
        Ok(v)
    };

    // Four 1 GiB volumes, each kept under backup for the whole measurement: a thread
    // starts the next full backup of a volume as soon as its last one ends.
    let mut volumes = Vec::new();
    for i in 0..4 {
        let path = inputs.join(format!("vol{i}.raw"));
        crate::bench_volume::generate(&path, GIB)?;
        let v = call(
            reqwest::Method::POST,
            "/os-volume-manage",
            Some(json!({"volume": {"ref": {"source-name": path}, "name": format!("load{i}")}})),
        )?;
        volumes.push(v["volume"]["id"].as_str().context("volume id")?.to_owned());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Load::default());
    let keeper = {
        let (stop, load, url) = (stop.clone(), load.clone(), url.clone());
        std::thread::spawn(move || keep_backing_up(&url, &volumes, &stop, &load))
    };
    while load.running.load(Ordering::Relaxed) < 4 {
        std::thread::sleep(Duration::from_millis(50));
    }

    // A marker 90 % of the way down the default order (newest first).
    let deep = backups * 9 / 10;
    let marker = rt.block_on(async {
        let db = Db::connect(&db_url).await?;
        let q = holdfast_db::BackupQuery { offset: deep as i64, limit: 1, ..Default::default() };
        anyhow::Ok(db.query_backups(&q).await?.into_iter().next().map(|b| b.id))
    })?;
    let marker = marker.with_context(|| format!("no row {deep}"))?;
    for (label, path) in [
        ("first page", "/backups/detail?limit=1000".to_owned()),
        ("deep page (marker at 90 %)", format!("/backups/detail?limit=1000&marker={marker}")),
    ] {
        let mut ms = Vec::with_capacity(requests);
        let mut all_four = 0;
        let (started, bytes_before) = (Instant::now(), load.bytes_done.load(Ordering::Relaxed));
        for _ in 0..requests {
            all_four += usize::from(load.running.load(Ordering::Relaxed) == 4);
            let t = Instant::now();
            let r = http
                .get(api(&path))
                .header("X-Auth-Token", TOKEN)
                .header("OpenStack-API-Version", "volume 3.64")
                .send()?;
            let status = r.status();
            let body = r.bytes()?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            // Checked after the clock stops: parsing is the client's cost, not the server's.
            let v: Value = serde_json::from_slice(&body)?;
            let n = v["backups"].as_array().map_or(0, Vec::len);
            if !status.is_success() || n != 1000 {
                bail!("{path}: {status}, {n} backups");
            }
        }
        // The load must really load: the backups' own rate while the list was timed.
        let moved = load.bytes_done.load(Ordering::Relaxed).saturating_sub(bytes_before);
        let backup_mb_s = moved as f64 / 1e6 / started.elapsed().as_secs_f64();
        ms.sort_by(f64::total_cmp);
        println!(
            "GET /backups/detail?limit=1000, {label}: {requests} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms \
             (target p99 < 50 ms); all four 1 GiB backups running at {all_four} of the {requests} requests, \
             backing up {backup_mb_s:.0} MB/s meanwhile",
            percentile(&ms, 0.5),
            percentile(&ms, 0.99),
            ms[ms.len() - 1],
        );
    }
    stop.store(true, Ordering::Relaxed);
    keeper.join().map_err(|_| anyhow::anyhow!("the backup keeper panicked"))??;
    println!("1 GiB backups completed during the measurement: {}", load.finished.load(Ordering::Relaxed));
    drop(server);
    Ok(())
}
