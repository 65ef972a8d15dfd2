//! Whole-object reads and writes on the preopened backup directory.
//!
//! std's file writes on wasip2 go through a stream in 4 KiB pieces; a backup object
//! is megabytes, so data moves with one `descriptor.write` per object and 64 KiB
//! `descriptor.read`s (the host's cap) instead. Directory work uses std::fs.

#[cfg(not(target_arch = "wasm32"))]
pub use native::Store;
#[cfg(target_arch = "wasm32")]
pub use wasi::Store;

#[cfg(target_arch = "wasm32")]
mod wasi {
    use wasip2::filesystem::preopens::get_directories;
    use wasip2::filesystem::types::{Descriptor, DescriptorFlags, ErrorCode, OpenFlags, PathFlags};

    use crate::DriverError;

    fn io(what: &str, path: &str, e: ErrorCode) -> DriverError {
        match e {
            ErrorCode::NoEntry => DriverError::NotFound(format!("{what} {path}: no such file")),
            e => DriverError::Io(format!("{what} {path}: {e:?}")),
        }
    }

    /// The directory the host preopened for this driver.
    pub struct Store {
        root: Descriptor,
        /// Guest path of the preopen, e.g. `/backup`, for std::fs calls.
        pub mount: String,
    }

    impl Store {
        /// Open the preopen mounted at `mount`.
        pub fn open(mount: &str) -> Result<Store, DriverError> {
            get_directories()
                .into_iter()
                .find(|(_, path)| path == mount)
                .map(|(root, path)| Store { root, mount: path })
                .ok_or_else(|| DriverError::Invalid(format!("the host granted no directory at {mount}")))
        }

        /// The std::fs path of `rel` inside the store.
        pub fn path(&self, rel: &str) -> String {
            format!("{}/{rel}", self.mount)
        }

        /// Create (or replace) `rel` with `data`, durably.
        pub fn write(&self, rel: &str, data: &[u8]) -> Result<(), DriverError> {
            self.write_file(rel, data)?.sync_data().map_err(|e| io("syncing", rel, e))
        }

        /// Create (or replace) `rel` with `data` without waiting for the disk: call
        /// [`Store::sync`] on it before anything that depends on it being durable.
        /// Syncing each object as it is written stalls the backup on every fsync.
        pub fn write_unsynced(&self, rel: &str, data: &[u8]) -> Result<(), DriverError> {
            self.write_file(rel, data).map(drop)
        }

        /// Make `rel` (a file, or a directory's entries) durable.
        pub fn sync(&self, rel: &str) -> Result<(), DriverError> {
            let f = self
                .root
                .open_at(PathFlags::empty(), rel, OpenFlags::empty(), DescriptorFlags::READ)
                .map_err(|e| io("opening", rel, e))?;
            f.sync().map_err(|e| io("syncing", rel, e))
        }

        fn write_file(&self, rel: &str, data: &[u8]) -> Result<Descriptor, DriverError> {
            let f = self
                .root
                .open_at(PathFlags::empty(), rel, OpenFlags::CREATE | OpenFlags::TRUNCATE, DescriptorFlags::WRITE)
                .map_err(|e| io("creating", rel, e))?;
            let mut done = 0usize;
            while done < data.len() {
                let n = f.write(&data[done..], done as u64).map_err(|e| io("writing", rel, e))?;
                if n == 0 {
                    return Err(DriverError::Io(format!("writing {rel}: no progress")));
                }
                done += n as usize;
            }
            Ok(f)
        }

        pub fn read(&self, rel: &str) -> Result<Vec<u8>, DriverError> {
            let f = self
                .root
                .open_at(PathFlags::empty(), rel, OpenFlags::empty(), DescriptorFlags::READ)
                .map_err(|e| io("opening", rel, e))?;
            let size = f.stat().map_err(|e| io("stat of", rel, e))?.size;
            let mut out = Vec::with_capacity(size as usize);
            loop {
                let (bytes, eof) = f
                    .read(size.saturating_sub(out.len() as u64).max(1), out.len() as u64)
                    .map_err(|e| io("reading", rel, e))?;
                if bytes.is_empty() || eof {
                    out.extend_from_slice(&bytes);
                    break;
                }
                out.extend_from_slice(&bytes);
            }
            Ok(out)
        }
    }
}

/// The same calls on a host directory, for drivers compiled natively (the
/// sandbox-cost benchmark): `mount` is a real path.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::fs::{File, OpenOptions};
    use std::io::{Read, Write};

    use crate::DriverError;

    fn io(what: &str, path: &str, e: std::io::Error) -> DriverError {
        match e.kind() {
            std::io::ErrorKind::NotFound => DriverError::NotFound(format!("{what} {path}: no such file")),
            _ => DriverError::Io(format!("{what} {path}: {e}")),
        }
    }

    pub struct Store {
        pub mount: String,
    }

    impl Store {
        pub fn open(mount: &str) -> Result<Store, DriverError> {
            if !std::path::Path::new(mount).is_dir() {
                return Err(DriverError::Invalid(format!("{mount} is not a directory")));
            }
            Ok(Store { mount: mount.to_owned() })
        }

        pub fn path(&self, rel: &str) -> String {
            format!("{}/{rel}", self.mount)
        }

        pub fn write(&self, rel: &str, data: &[u8]) -> Result<(), DriverError> {
            self.write_file(rel, data)?.sync_data().map_err(|e| io("syncing", rel, e))
        }

        pub fn write_unsynced(&self, rel: &str, data: &[u8]) -> Result<(), DriverError> {
            self.write_file(rel, data).map(drop)
        }

        pub fn sync(&self, rel: &str) -> Result<(), DriverError> {
            File::open(self.path(rel)).and_then(|f| f.sync_all()).map_err(|e| io("syncing", rel, e))
        }

        fn write_file(&self, rel: &str, data: &[u8]) -> Result<File, DriverError> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(self.path(rel))
                .map_err(|e| io("creating", rel, e))?;
            f.write_all(data).map_err(|e| io("writing", rel, e))?;
            Ok(f)
        }

        pub fn read(&self, rel: &str) -> Result<Vec<u8>, DriverError> {
            let mut out = Vec::new();
            File::open(self.path(rel)).and_then(|mut f| f.read_to_end(&mut out)).map_err(|e| io("reading", rel, e))?;
            Ok(out)
        }
    }
}
