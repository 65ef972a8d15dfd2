//! Backends from `serve --config`: two posix backends in two zones behind one host,
//! and configs that must be refused before anything is served.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::support::{BIN, Database, MIB, Server, files_under, sha256_file};

fn config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("holdfast.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn two_backends_in_two_zones() {
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (a, b) = (work.path().join("store-a"), work.path().join("store-b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let cfg = config(
        work.path(),
        &format!(
            "default_backend = \"nfs\"\n\
             [backends.nfs]\ndriver = \"posix\"\navailability_zone = \"az1\"\n\
             grants = {{ store = \"{}\" }}\n\
             [backends.archive]\ndriver = \"posix\"\navailability_zone = \"az2\"\n\
             settings = {{ backup_compression_algorithm = \"zlib\" }}\n\
             grants = {{ store = \"{}\", memory = \"128MiB\", instances = 2 }}\n",
            a.display(),
            b.display()
        ),
    );
    let s = Server::start(&Database::Sqlite, &["--config", cfg.to_str().unwrap()]);

    let (_, services) = s.get("/os-services");
    let services = services["services"].as_array().unwrap().clone();
    assert_eq!(services.len(), 2, "{services:?}");
    for (backend, zone) in [("nfs", "az1"), ("archive", "az2")] {
        let svc = services.iter().find(|v| v["host"].as_str().unwrap().ends_with(&format!("@{backend}"))).unwrap();
        assert_eq!((svc["zone"].as_str(), svc["state"].as_str()), (Some(zone), Some("up")), "{svc}");
    }

    // The admin CLI lists both backends' drivers.
    let out = s.cli(&["plugin", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Backend") && text.contains("archive") && text.contains("posix"),
        "{text}"
    );
    // SIGHUP reloads the file (nothing changed: every backend stays as it is).
    s.signal(libc::SIGHUP);
    crate::support::until("a reload on SIGHUP", || {
        s.log().contains("trigger=\"SIGHUP\"") && s.log().contains("configuration reloaded")
    });
    assert!(s.log().contains("added=[] upgraded=[] removed=[] failed=[]"), "{}", s.log());

    let (src, vol) = s.mixed_volume("v", 8 * MIB, 7);
    let (st, made) = s.post("/backups", json!({"backup": {"volume_id": vol, "availability_zone": "az2"}}));
    assert_eq!(st, 202, "{made}");
    let on_b = made["backup"]["id"].as_str().unwrap().to_owned();
    let done = s.wait_backup(&on_b, &["available"]);
    assert_eq!(done["availability_zone"], "az2");
    assert!(!files_under(&b).is_empty() && files_under(&a).is_empty(), "az2's backup went to store-b only");

    let (st, made) = s.post("/backups", json!({"backup": {"volume_id": vol}}));
    assert_eq!(st, 202, "{made}");
    let on_a = made["backup"]["id"].as_str().unwrap().to_owned();
    assert_eq!(s.wait_backup(&on_a, &["available"])["availability_zone"], "az1");
    assert!(!files_under(&a).is_empty(), "the default backend wrote store-a");

    let (st, e) = s.post("/backups", json!({"backup": {"volume_id": vol, "availability_zone": "az9"}}));
    assert_eq!(st, 400, "{e}");

    // Each restores from the backend that wrote it, bit for bit.
    for id in [&on_b, &on_a] {
        let (st, r) = s.post(&format!("/backups/{id}/restore"), json!({"restore": {"name": format!("r-{id}")}}));
        assert_eq!(st, 202, "{r}");
        let target = r["restore"]["volume_id"].as_str().unwrap().to_owned();
        let v = s.wait_volume(&target, &["available"]);
        let path = v["holdfast:path"].as_str().unwrap().to_owned();
        let want = sha256_file(&src);
        let restored = std::fs::read(&path).unwrap();
        assert_eq!(crate::support::sha256_bytes(&restored[..8 * MIB]), want, "restore of {id}");
    }
    // Deleting goes to the right store too.
    let (st, _) = s.request("DELETE", &format!("/backups/{on_b}"), None);
    assert_eq!(st, 202);
    crate::support::until("the az2 backup is gone", || s.get(&format!("/backups/{on_b}")).0 == 404);
    assert!(files_under(&b).is_empty(), "store-b emptied: {:?}", files_under(&b));
    assert!(!files_under(&a).is_empty());
}

/// `holdfast serve --config FILE` that must not start: its one-line error.
fn refused(text: &str, extra_files: &[(&str, &[u8])]) -> String {
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    for (name, bytes) in extra_files {
        std::fs::write(work.path().join(name), bytes).unwrap();
    }
    let text = text.replace("$DIR", work.path().to_str().unwrap());
    let cfg = config(work.path(), &text);
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config", cfg.to_str().unwrap(), "--data-dir"])
        .arg(work.path().join("data"))
        .arg("--compile-cache")
        .arg(Path::new(env!("CARGO_TARGET_TMPDIR")).join("holdfast-compile-cache"))
        .env("HOLDFAST_LOG", "error")
        .output()
        .unwrap();
    assert!(!out.status.success(), "started with {text}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A config's text, files beside it, and what its error must say.
type Case<'a> = (String, Vec<(&'a str, &'a [u8])>, &'a str);

#[test]
fn bad_configs_are_refused_naming_the_key() {
    let dir = "grants = { store = \"$DIR/store\" }";
    let wrong_world = holdfast_plugin_artifacts::HOSTILE_WRONG_WORLD;
    let future = holdfast_plugin_artifacts::HOSTILE_FUTURE_WIT;
    let cases: Vec<Case> = vec![
        (format!("[backends.a]\ndriver = \"{wrong_world}\"\n{dir}\n"), vec![], "not a Holdfast backup driver"),
        (format!("[backends.a]\ndriver = \"{future}\"\n{dir}\n"), vec![], "built for holdfast:backup@9.0.0"),
        (format!("[backends.a]\ndriver = \"posix\"\n{dir}\nflavour = 1\n"), vec![], "unknown field `flavour`"),
        ("[backends.a\ndriver = \"posix\"\n".into(), vec![], "holdfast.toml"),
        (format!("[backends.a]\ndriver = \"missing.wasm\"\n{dir}\n"), vec![], "backends.a.driver"),
        (
            format!("[backends.a]\ndriver = \"junk.wasm\"\n{dir}\n"),
            vec![("junk.wasm", b"\0asm not really")],
            "backends.a.driver",
        ),
        (
            format!("[backends.a]\ndriver = \"posix\"\nsha256 = \"{}\"\n{dir}\n", "ab".repeat(32)),
            vec![],
            "backends.a.sha256: the driver's SHA-256 is",
        ),
        ("[backends.a]\ndriver = \"posix\"\ngrants = { store = \"$DIR/data/backups\" }\n".into(), vec![], "is inside"),
        (
            format!(
                "default_backend = \"a\"\n[backends.a]\ndriver = \"posix\"\n{dir}\n[backends.b]\ndriver = \"posix\"\n{dir}\n"
            ),
            vec![],
            "overlaps",
        ),
        (
            "[backends.a]\ndriver = \"posix\"\ngrants = { dirs = [{ path = \"$DIR/store\", access = \"rw\" }] }\n"
                .into(),
            vec![],
            "backends.a.grants.dirs[0]: a read-write directory lets the driver touch every backup in it",
        ),
    ];
    for (text, files, expect) in cases {
        let err = refused(&text, &files);
        assert!(err.contains(expect), "{text}\n→ {err}");
        assert!(err.lines().filter(|l| l.starts_with("error")).count() == 1, "one error: {err}");
    }
}
