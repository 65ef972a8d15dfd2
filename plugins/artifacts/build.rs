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
    ("holdfast-ceph", "CEPH"),
    ("holdfast-s3", "S3"),
    ("holdfast-swift", "SWIFT"),
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
    ("holdfast-hostile-s3-neighbour", "HOSTILE_S3_NEIGHBOUR"),
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
        "plugins/ceph",
        "plugins/s3",
        "plugins/swift",
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
    // The hog with more core instances appended: what no Rust guest can make (one memory,
    // one table), so built here — the host must refuse each at instantiation.
    let hog = std::fs::read(out_dir.join("holdfast_hostile_hog.wasm")).expect("the hog was built above");
    for (name, what, modules) in [
        ("HOSTILE_MANY_MEMORIES", "eight more memories of one page each", vec![memory_module(1); 8]),
        ("HOSTILE_BIG_MEMORIES", "three more memories of 100 MiB each", vec![memory_module(1600); 3]),
        ("HOSTILE_BIG_TABLE", "a table of 4 million elements", vec![table_module(4 << 20)]),
        ("HOSTILE_MANY_TABLES", "twenty more tables", vec![table_module(1); 20]),
    ] {
        let file = format!("{}.wasm", name.to_lowercase());
        let copy = out_dir.join(&file);
        std::fs::write(&copy, append_instances(&hog, &modules)).expect("writing a derived component");
        consts.push_str(&format!(
            "/// The hog plus {what}, instantiated with it.
pub const {name}_BYTES: &[u8] = include_bytes!({:?});
",
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

fn leb(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    leb(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// A core module with one memory of `pages` 64 KiB pages.
fn memory_module(pages: u64) -> Vec<u8> {
    let mut body = vec![1, 0x00];
    leb(pages, &mut body);
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    section(5, &body, &mut m);
    m
}

/// A core module with one funcref table of `elements`.
fn table_module(elements: u64) -> Vec<u8> {
    let mut body = vec![1, 0x70, 0x00];
    leb(elements, &mut body);
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    section(4, &body, &mut m);
    m
}

/// `component` with each of `modules` appended as a core module and a core instance of
/// it (no imports): component sections may come in any order once what they use is
/// defined, and every core instance is made when the component is instantiated.
fn append_instances(component: &[u8], modules: &[Vec<u8>]) -> Vec<u8> {
    // Core modules defined so far (section id 1 at the top level) give the next index.
    let mut at = 8;
    let mut count = 0u64;
    while at < component.len() {
        let id = component[at];
        let (mut size, mut shift, mut i) = (0u64, 0, at + 1);
        loop {
            let b = component[i];
            size |= u64::from(b & 0x7f) << shift;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        if id == 1 {
            count += 1;
        }
        at = i + size as usize;
    }
    let mut out = component.to_vec();
    for m in modules {
        section(1, m, &mut out);
        let mut inst = vec![1, 0x00];
        leb(count, &mut inst);
        inst.push(0); // no arguments
        section(2, &inst, &mut out);
        count += 1;
    }
    out
}
