//! Compiled drivers kept on disk, so a restart does not compile the same component
//! again (about 0.1 s in a release build, 2–3 s in a debug one).
//!
//! An entry is named by the SHA-256 of the component's bytes and a hash of the
//! engine's compatibility (wasmtime version and settings), so a changed driver or a
//! new host never loads a stale entry. Loading native code from disk is only as safe
//! as the directory: it lives in the operator's data dir, created private (0700);
//! drivers are never granted it.

use std::hash::{Hash, Hasher};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use holdfast_chunk::digest::sha256_hex;
use wasmtime::component::Component;

use crate::engine::engine;

fn entry(dir: &Path, bytes: &[u8]) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine().precompile_compatibility_hash().hash(&mut h);
    dir.join(format!("{}-{:016x}.cwasm", sha256_hex(bytes), h.finish()))
}

/// The component for `bytes`: from the cache when an entry exists and loads, else
/// compiled (and then stored; a cache that cannot be written only costs time).
pub fn compile(bytes: &[u8], cache: Option<&Path>) -> wasmtime::Result<Component> {
    let Some(dir) = cache else { return Component::new(engine(), bytes) };
    let path = entry(dir, bytes);
    // Read into memory rather than mapping the file: a mapped entry that someone
    // truncates later would take the process down with SIGBUS.
    if let Ok(compiled) = std::fs::read(&path) {
        // SAFETY: entries are written only by `store` below from `Component::serialize`
        // of this engine, in a private directory (see the module docs); wasmtime checks
        // the header and the engine compatibility and refuses anything else.
        match unsafe { Component::deserialize(engine(), &compiled) } {
            Ok(c) => return Ok(c),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "unusable compile cache entry; compiling"),
        }
    }
    let component = Component::new(engine(), bytes)?;
    if let Err(e) = store(dir, &path, &component) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not write the compile cache");
    }
    Ok(component)
}

fn store(dir: &Path, path: &Path, component: &Component) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, component.serialize()?)?;
    std::fs::rename(&tmp, path)?; // whole entries only: a reader never sees half a file
    Ok(())
}
