//! The stock clients our users run — python-openstackclient 10.5 and
//! python-cinderclient 9.10 — against Holdfast behind a real Keystone 30.0.0
//! (`scripts/openstack-env.sh` installs both from PyPI and provisions Keystone:
//! projects alpha and beta, users alice-admin/-member/-reader of alpha and
//! bob-member of beta, Holdfast in the catalog). Ordinary password auth; every
//! command must succeed without printing an error, or fail where Cinder's
//! policy says it must. Never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

use crate::support::{Database, Server, sha256_file};

/// Holdfast behind a Keystone of its own, with the stock clients (also used by
/// `swift_keystone.rs`).
pub(crate) struct Cloud {
    pub(crate) env: Value,
    pub(crate) server: Server,
    dir: PathBuf,
}

impl Drop for Cloud {
    /// Keystone runs detached: stop it, pass or fail.
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(&self.dir).output();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/openstack-env.sh")
}

/// A port nothing listens on now (not 5000, which a developer's own Keystone may hold).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Cloud {
    fn start() -> Cloud {
        Cloud::start_with("openstack", free_port(), &[])
    }

    /// Keystone on `port`, set up in `CARGO_TARGET_TMPDIR/<name>` (the venvs are
    /// shared by every cloud), Holdfast started with `server_args` more.
    pub(crate) fn start_with(name: &str, port: u16, server_args: &[&str]) -> Cloud {
        let port = port.to_string();
        let keystone = format!("http://127.0.0.1:{port}");
        let mut args = vec!["--auth", "keystone", "--keystone-url", &keystone, "--keystone-password", "holdfast-pw"];
        args.extend_from_slice(server_args);
        let server = Server::start(&Database::Sqlite, &args);
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dir = tmp.join(name);
        // Stop a Keystone a killed earlier run left behind, then set up afresh.
        let _ = Command::new("bash").arg(script()).arg("stop").arg(&dir).output();
        let out = Command::new("bash")
            .arg(script())
            .arg(&dir)
            .arg(&server.url)
            .env("KEYSTONE_PORT", &port)
            .env("OPENSTACK_VENV_DIR", tmp.join("openstack-venvs"))
            .output()
            .expect("running scripts/openstack-env.sh");
        assert!(out.status.success(), "scripts/openstack-env.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let env: Value = serde_json::from_slice(&std::fs::read(dir.join("env.json")).unwrap()).unwrap();
        Cloud { env, server, dir }
    }

    pub(crate) fn project(&self, name: &str) -> &str {
        self.env["projects"][name].as_str().unwrap()
    }

    pub(crate) fn command(&self, user: &str, client: &str, args: &[&str]) -> Command {
        let mut c = Command::new(self.env["bin"][client].as_str().unwrap());
        c.args(args);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("OS_") || k == "CINDER_ENDPOINT") {
            c.env_remove(k);
        }
        for (k, v) in self.env["users"][user]["env"].as_object().unwrap() {
            c.env(k, v.as_str().unwrap());
        }
        c
    }

    /// Run a client command that must succeed and print no error; its stdout.
    pub(crate) fn ok(&self, user: &str, client: &str, args: &[&str]) -> String {
        let out = self.command(user, client, args).output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success(),
            "{client} {args:?} as {user} failed ({}):\n{stderr}\n{stdout}\n--- server log ---\n{}",
            out.status,
            self.server.log()
        );
        let lower = stderr.to_lowercase();
        assert!(
            !lower.contains("error") && !lower.contains("traceback"),
            "{client} {args:?} as {user} printed an error:\n{stderr}"
        );
        stdout.into_owned()
    }

    pub(crate) fn json(&self, user: &str, client: &str, args: &[&str]) -> Value {
        let out = self.ok(user, client, args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{client} {args:?}: not JSON ({e}): {out}"))
    }

    /// A command that must be refused; returns what it printed.
    pub(crate) fn refused(&self, user: &str, client: &str, args: &[&str], needle: &str) -> String {
        let out = self.command(user, client, args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
        assert!(!out.status.success(), "{client} {args:?} as {user} should have failed:\n{text}");
        assert!(text.contains(needle), "{client} {args:?} as {user}: expected {needle:?} in:\n{text}");
        text
    }

    /// Poll `openstack volume backup|volume show` until `status` (error fails at once).
    pub(crate) fn wait(&self, user: &str, kind: &[&str], id: &str, status: &str) {
        let t = Instant::now();
        loop {
            let mut args = kind.to_vec();
            args.extend(["show", id, "-f", "value", "-c", "status"]);
            let now = self.ok(user, "openstack", &args).trim().to_owned();
            if now == status {
                return;
            }
            assert!(!now.starts_with("error"), "{kind:?} {id} went to {now}:\n{}", self.server.log());
            assert!(t.elapsed() < Duration::from_secs(180), "{kind:?} {id} stuck in {now}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    pub(crate) fn volume_path(&self, id: &str) -> PathBuf {
        self.server.dir.path().join("data").join("volumes").join(format!("{id}.raw"))
    }
}

pub(crate) fn fill(path: &Path, seed: u8) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    for i in 0..8u64 {
        f.seek(SeekFrom::Start(i * (3 << 20))).unwrap();
        f.write_all(&vec![seed.wrapping_add(i as u8) | 1; 1 << 20]).unwrap();
    }
    f.sync_all().unwrap();
}

#[test]
fn stock_clients_behind_keystone() {
    let c = Cloud::start();
    let osc = |user: &str, args: &[&str]| c.json(user, "openstack", args);
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();

    // --- openstackclient, as a member of alpha ---
    let v1 = osc("alice-member", &["volume", "create", "--size", "1", "osc-v1", "-f", "json"]);
    let v1 = id(&v1);
    c.wait("alice-member", &["volume"], &v1, "available");
    fill(&c.volume_path(&v1), 3);
    let want = sha256_file(&c.volume_path(&v1));
    let full = osc(
        "alice-member",
        &[
            "volume",
            "backup",
            "create",
            "--name",
            "osc-full",
            "--description",
            "first",
            "--property",
            "k=v",
            "osc-v1",
            "-f",
            "json",
        ],
    );
    let full = id(&full);
    c.wait("alice-member", &["volume", "backup"], &full, "available");
    fill(&c.volume_path(&v1), 9);
    let changed = sha256_file(&c.volume_path(&v1));
    let inc =
        osc("alice-member", &["volume", "backup", "create", "--incremental", "--name", "osc-inc", &v1, "-f", "json"]);
    let inc = id(&inc);
    c.wait("alice-member", &["volume", "backup"], &inc, "available");
    let shown = osc("alice-member", &["volume", "backup", "show", "osc-inc", "-f", "json"]);
    assert_eq!(shown["is_incremental"], true, "{shown}");
    let listed = osc("alice-member", &["volume", "backup", "list", "--name", "osc-full", "-f", "json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let listed = osc(
        "alice-member",
        &["volume", "backup", "list", "--volume", "osc-v1", "--status", "available", "--long", "-f", "json"],
    );
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    c.ok(
        "alice-member",
        "openstack",
        &["volume", "backup", "set", "--name", "osc-full2", "--description", "renamed", "--property", "a=b", &full],
    );
    let shown = osc("alice-member", &["volume", "backup", "show", &full, "-f", "json"]);
    assert_eq!(
        (&shown["name"], &shown["description"]),
        (&Value::from("osc-full2"), &Value::from("renamed")),
        "{shown}"
    );
    // Restore the incremental chain onto a new volume, the full onto the source.
    let r = osc("alice-member", &["volume", "backup", "restore", "osc-inc", "osc-restored", "-f", "json"]);
    let restored = r["volume_id"].as_str().unwrap().to_owned();
    c.wait("alice-member", &["volume"], &restored, "available");
    c.wait("alice-member", &["volume", "backup"], &inc, "available");
    assert_eq!(sha256_file(&c.volume_path(&restored)), changed, "the incremental restores the changed data");
    c.ok("alice-member", "openstack", &["volume", "backup", "restore", "--force", &full, &v1, "-f", "json"]);
    c.wait("alice-member", &["volume", "backup"], &full, "available");
    c.wait("alice-member", &["volume"], &v1, "available");
    assert_eq!(sha256_file(&c.volume_path(&v1)), want, "the full restores the first data onto the source");
    // Snapshots.
    let s1 = osc("alice-member", &["volume", "snapshot", "create", "--volume", "osc-v1", "osc-s1", "-f", "json"]);
    c.wait("alice-member", &["volume", "snapshot"], &id(&s1), "available");
    let snaps = osc("alice-member", &["volume", "snapshot", "list", "-f", "json"]);
    assert_eq!(snaps.as_array().unwrap().len(), 1, "{snaps}");
    c.ok("alice-member", "openstack", &["volume", "snapshot", "delete", "osc-s1"]);
    // Readers read and cannot write; members cannot use the admin calls.
    osc("alice-reader", &["volume", "backup", "show", &full, "-f", "json"]);
    c.refused("alice-reader", "openstack", &["volume", "backup", "create", "osc-v1"], "403");
    c.refused("alice-reader", "openstack", &["volume", "backup", "delete", &inc], "403");
    c.refused("alice-member", "openstack", &["volume", "backup", "set", "--state", "error", &inc], "403");
    c.refused("alice-member", "openstack", &["volume", "backup", "record", "export", &full], "403");
    c.refused("alice-member", "openstack", &["volume", "service", "list"], "403");
    // Admin of alpha: reset-state, export, force-delete, services.
    c.ok("alice-admin", "openstack", &["volume", "backup", "set", "--state", "error", &inc]);
    c.wait("alice-admin", &["volume", "backup"], &inc, "error");
    let record = osc("alice-admin", &["volume", "backup", "record", "export", &full, "-f", "json"]);
    assert!(record["backup_service"].as_str().unwrap().starts_with("cinder.backup.drivers"), "{record}");
    let services = osc("alice-admin", &["volume", "service", "list", "-f", "json"]);
    assert_eq!(services[0]["Binary"], "cinder-backup", "{services}");
    assert_eq!(services[0]["State"], "up", "{services}");
    // Another project sees none of it.
    let theirs = osc("bob-member", &["volume", "backup", "list", "-f", "json"]);
    assert_eq!(theirs, Value::Array(vec![]), "{theirs}");
    c.refused("bob-member", "openstack", &["volume", "backup", "show", &full], "No Backup found");
    c.ok("alice-member", "openstack", &["volume", "backup", "delete", &inc]);
    c.ok("alice-admin", "openstack", &["volume", "backup", "delete", "--force", &full]);

    // --- cinderclient, as a member of alpha (admin for the admin calls) ---
    let cinder = |user: &str, args: &[&str]| c.ok(user, "cinder", args);
    cinder("alice-member", &["create", "--name", "cin-v1", "1"]);
    let vols = osc("alice-member", &["volume", "list", "--name", "cin-v1", "-f", "json"]);
    let cv = vols[0]["ID"].as_str().unwrap().to_owned();
    c.wait("alice-member", &["volume"], &cv, "available");
    fill(&c.volume_path(&cv), 5);
    let cwant = sha256_file(&c.volume_path(&cv));
    let out = cinder(
        "alice-member",
        &["backup-create", "--name", "cin-full", "--description", "d", "--metadata", "k1=v1", "k2=v2", "cin-v1"],
    );
    let cfull = table_value(&out, "id");
    c.wait("alice-member", &["volume", "backup"], &cfull, "available");
    let out = cinder("alice-member", &["backup-create", "--incremental", "--name", "cin-inc", "cin-v1"]);
    let cinc = table_value(&out, "id");
    c.wait("alice-member", &["volume", "backup"], &cinc, "available");
    let list = cinder(
        "alice-member",
        &[
            "backup-list",
            "--name",
            "cin-full",
            "--status",
            "available",
            "--volume-id",
            &cv,
            "--sort",
            "created_at:asc",
            "--limit",
            "5",
        ],
    );
    assert!(list.contains(&cfull) && !list.contains(&cinc), "{list}");
    let show = cinder("alice-member", &["backup-show", "cin-inc"]);
    assert!(show.contains("is_incremental") && show.contains("True"), "{show}");
    cinder(
        "alice-member",
        &["backup-update", "--name", "cin-full2", "--description", "d2", "--metadata", "x=y", &cfull],
    );
    assert!(cinder("alice-member", &["backup-show", &cfull]).contains("cin-full2"));
    cinder("alice-member", &["backup-restore", "--volume", &cv, &cinc]);
    c.wait("alice-member", &["volume", "backup"], &cinc, "available");
    c.wait("alice-member", &["volume"], &cv, "available");
    assert_eq!(sha256_file(&c.volume_path(&cv)), cwant);
    let out = cinder("alice-member", &["backup-restore", "--name", "cin-restored", &cfull]);
    let crestored = table_value(&out, "volume_id");
    c.wait("alice-member", &["volume"], &crestored, "available");
    assert_eq!(sha256_file(&c.volume_path(&crestored)), cwant);
    c.refused("alice-member", "cinder", &["backup-export", &cfull], "403");
    c.refused("alice-reader", "cinder", &["backup-delete", &cinc], "403");
    // Export, then import the record under a new id (as tempest does) and restore it.
    let out = cinder("alice-admin", &["backup-export", &cfull]);
    let (service, url) = (table_value(&out, "backup_service"), table_value(&out, "backup_url"));
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut record: Value = serde_json::from_slice(&b64.decode(&url).unwrap()).unwrap();
    let new_id = uuid::Uuid::new_v4().to_string();
    record["id"] = Value::from(new_id.clone());
    let url = b64.encode(record.to_string());
    c.refused("alice-member", "cinder", &["backup-import", &service, &url], "403");
    cinder("alice-admin", &["backup-import", &service, &url]);
    c.wait("alice-admin", &["volume", "backup"], &new_id, "available");
    let out = cinder("alice-admin", &["backup-restore", &new_id]);
    let imported = table_value(&out, "volume_id");
    c.wait("alice-admin", &["volume"], &imported, "available");
    assert_eq!(sha256_file(&c.volume_path(&imported)), cwant, "the imported record restores");
    cinder("alice-admin", &["backup-reset-state", "--state", "error", &cinc]);
    c.wait("alice-admin", &["volume", "backup"], &cinc, "error");
    cinder("alice-member", &["backup-delete", &cinc]);
    cinder("alice-admin", &["backup-delete", "--force", &new_id]);
    cinder("alice-member", &["snapshot-create", "--name", "cin-s1", &cv]);
    let snaps = osc("alice-member", &["volume", "snapshot", "list", "--name", "cin-s1", "-f", "json"]);
    let sid = snaps[0]["ID"].as_str().unwrap().to_owned();
    c.wait("alice-member", &["volume", "snapshot"], &sid, "available");
    assert!(cinder("alice-member", &["snapshot-list"]).contains(&sid));
    cinder("alice-member", &["snapshot-delete", &sid]);
    assert!(cinder("alice-admin", &["service-list"]).contains("cinder-backup"));
    let theirs = cinder("bob-member", &["backup-list"]);
    assert!(!theirs.contains(&cfull), "{theirs}");
    assert!(c.project("beta") != c.project("alpha"));
}

/// `| key | value |` from cinderclient's property table.
fn table_value(out: &str, key: &str) -> String {
    out.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() >= 3 && cells[1] == key).then(|| cells[2].to_owned())
        })
        .next()
        .unwrap_or_else(|| panic!("no {key} in:\n{out}"))
}
