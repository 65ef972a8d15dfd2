//! README's "Using it" block, run as written from top to bottom: a newcomer's
//! path must not break. The built binary is put on PATH; the server listens on a
//! free port (HOLDFAST_LISTEN / HOLDFAST_URL) so the test runs beside others.

use std::path::Path;
use std::process::Command;

use crate::support::BIN;

#[test]
fn readme_walkthrough_runs_as_written() {
    let readme = include_str!("../../README.md");
    let section = readme.split("\n## Using it\n").nth(1).expect("README has a \"Using it\" section");
    let block = section.split("```sh\n").nth(1).and_then(|b| b.split("\n```").next()).expect("a sh block");
    let dir = tempfile::Builder::new().prefix("walkthrough").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", block])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("HOLDFAST_LISTEN", format!("127.0.0.1:{port}"))
        .env("HOLDFAST_URL", format!("http://127.0.0.1:{port}"))
        .env_remove("HOLDFAST_TOKEN")
        .env_remove("HOLDFAST_PROJECT")
        .env_remove("HOLDFAST_DATA_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = std::fs::read_to_string(dir.path().join("demo/serve.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "the walkthrough failed ({}):\n{stdout}\n{stderr}\n--- serve.log ---\n{log}",
        out.status
    );
    assert!(stdout.contains("db-copy is identical to db"), "{stdout}");
    // Lists print their header even when short, and errors never reach stderr.
    for header in ["ID", "Name", "Status"] {
        assert!(stdout.lines().any(|l| l.contains(header)), "no {header} header in:\n{stdout}");
    }
    assert!(!stderr.to_lowercase().contains("error"), "{stderr}");
}
