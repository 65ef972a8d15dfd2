//! Builds every driver component for wasm32-wasip2 with a nested cargo (its own
//! target dir, so it never waits on the outer build's lock), then writes their paths
//! into `OUT_DIR/artifacts.rs`. This is how `cargo test` and `cargo run` build the
//! plugins with nothing installed by hand (after wasmtime's test-programs artifacts).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
/// (package, const name) of each component to build.
const PLUGINS: &[(&str, &str)] = &[
    ("holdfast-posix", "POSIX"),
    ("holdfast-driver-template", "TEMPLATE"),
    ("holdfast-hostile-trap-mid-backup", "HOSTILE_TRAP_MID_BACKUP"),
    ("holdfast-hostile-escape-fs", "HOSTILE_ESCAPE_FS"),
    ("holdfast-hostile-wrong-world", "HOSTILE_WRONG_WORLD"),
    ("holdfast-hostile-future-wit", "HOSTILE_FUTURE_WIT"),
    ("holdfast-hostile-net-probe", "HOSTILE_NET_PROBE"),
    ("holdfast-hostile-extent-probe", "HOSTILE_EXTENT_PROBE"),
    ("holdfast-hostile-spin", "HOSTILE_SPIN"),
    ("holdfast-hostile-garbage", "HOSTILE_GARBAGE"),
    ("holdfast-hostile-handles", "HOSTILE_HANDLES"),
    ("holdfast-hostile-hog", "HOSTILE_HOG"),
    ("holdfast-hostile-neighbour", "HOSTILE_NEIGHBOUR"),
];

/// (file in fixtures/, const name) of each kept component.
const FIXTURES: &[(&str, &str)] =
    &[("holdfast_posix-wit-0.1.0.wasm", "POSIX_WIT_0_1_0"), ("holdfast_posix-wit-0.2.0.wasm", "POSIX_WIT_0_2_0")];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().and_then(Path::parent).expect("plugins/artifacts is two levels down").to_owned();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    for watched in [
        "plugins/artifacts/fixtures",
        "plugins/sdk",
        "plugins/posix",
        "plugins/template",
        "plugins/hostile",
        "wit",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    ensure_target(&root);
    let target_dir =
        env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target")).join("wasm-plugins");

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root).args(["build", "--release", "--target", TARGET, "--target-dir"]).arg(&target_dir);
    for (package, _) in PLUGINS {
        cmd.args(["-p", package]);
    }
    // The outer build's flags and wrappers (clippy, coverage) are not for the guests.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_MAKEFLAGS",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    // Small, stripped guests: faster to compile at load, smaller to embed.
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true")
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
    let status = cmd.status().expect("running the nested cargo build of the plugins");
    assert!(status.success(), "building the wasm plugins failed (see the output above)");

    let mut consts = String::new();
    for (package, name) in PLUGINS {
        let file = format!("{}.wasm", package.replace('-', "_"));
        let built = target_dir.join(TARGET).join("release").join(&file);
        let copy = out_dir.join(&file);
        std::fs::copy(&built, &copy).unwrap_or_else(|e| panic!("copying {}: {e}", built.display()));
        consts.push_str(&format!(
            "/// Path of the `{package}` component.\npub const {name}: &str = {:?};\n\
             /// Bytes of the `{package}` component.\npub const {name}_BYTES: &[u8] = include_bytes!({:?});\n",
            copy.display().to_string(),
            copy.display().to_string(),
        ));
    }
    // Components kept as built by an earlier SDK (fixtures/README.md says how): the
    // host must keep loading what vendors already shipped.
    for (file, name) in FIXTURES {
        let path = manifest_dir.join("fixtures").join(file);
        consts.push_str(&format!(
            "/// Path of the kept `{file}` component.\npub const {name}: &str = {:?};\n\
             /// Bytes of the kept `{file}` component.\npub const {name}_BYTES: &[u8] = include_bytes!({:?});\n",
            path.display().to_string(),
            path.display().to_string(),
        ));
    }
    std::fs::write(out_dir.join("artifacts.rs"), consts).expect("writing artifacts.rs");
}

/// rustup does not add the targets rust-toolchain.toml lists when RUSTUP_AUTO_INSTALL=0
/// (as on our machines): add the wasm target ourselves when it is missing.
fn ensure_target(root: &Path) {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc).args(["--print", "target-libdir", "--target", TARGET]).output();
    let present = libdir
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .is_some_and(|dir| {
            dir.join("libstd").exists() || std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some())
        });
    if present {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup");
    let status = Command::new("rustup").current_dir(root).args(["target", "add", TARGET]).status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "the {TARGET} target is missing and `rustup target add {TARGET}` failed"
    );
}
