//! Write a Holdfast backup driver.
//!
//! A driver is a wasm component (`wasm32-wasip2`, `crate-type = ["cdylib"]`) that
//! implements [`Driver`] (the WIT `driver` interface) and calls [`export_driver!`]:
//!
//! ```text
//! struct MyDriver;
//! impl holdfast_driver_sdk::Driver for MyDriver { /* setup, backup, restore, … */ }
//! #[cfg(target_arch = "wasm32")] // exports exist only in the wasm build
//! holdfast_driver_sdk::export_driver!(MyDriver with_types_in holdfast_driver_sdk::bindings);
//! ```
//!
//! The host keeps volume bytes: a driver gets `source`/`target` handles and hashed,
//! compressed chunks (see `wit/holdfast-backup@0.2.8/volume.wit`). Helpers here:
//! - [`chunked`]: Cinder's chunked driver over any [`chunked::ObjectStore`].
//! - [`objects`]: the host's object store (WIT `objects`, since 0.2.1) as an
//!   [`chunked::ObjectStore`]: a driver confined to its backup, with no directory at all.
//! - [`cinder`]: Cinder's chunked layout (container, object names, metadata, sha256file).
//! - [`pyjson`]: JSON printed byte-for-byte like Python's `json.dumps(indent=2, sort_keys=True)`.
//! - [`store`]: whole-object reads and writes on a preopened directory (unconfined drivers).
//! - [`http`]: a blocking HTTP client over `wasi:http` (object-store drivers).
//! - [`settings`]: typed access to the operator's configuration.
//! - [`transfer`]: several object uploads and downloads in flight, with retries.
//! - [`s3`], [`swift`]: object stores over `wasi:http` (Cinder's S3 and Swift options).
//! - [`volume`]: the host as traits, so the chunked driver also runs natively.

pub mod bindings {
    wit_bindgen::generate!({
        world: "backup-driver",
        path: "../../wit/holdfast-backup@0.2.8",
        // The streams `chunk.write-stored` writes into are wasi:http's own.
        with: {
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/error@0.2.12": wasip2::io::error,
        },
        pub_export_macro: true,
        export_macro_name: "export_driver",
        default_bindings_module: "holdfast_driver_sdk::bindings",
    });
}

pub use bindings::export_driver;

pub mod chunked;
pub mod cinder;
pub mod http;
pub mod objects;
pub mod pyjson;
pub mod s3;
pub mod settings;
pub mod sha256file;
pub mod store;
pub mod swift;
pub mod transfer;
pub mod volume;

pub use bindings::exports::holdfast::backup::driver::{BackupOutcome, DriverInfo, Guest as Driver};
pub use bindings::holdfast::backup::host::{self, Level};
/// The backend's granted RBD pools (WIT `rbd`, since 0.2.2): see `plugins/ceph`.
pub use bindings::holdfast::backup::rbd;
pub use bindings::holdfast::backup::types::{
    BackupInfo, Compression, DriverError, Extent, Setting, Timestamp, VolumeError,
};
pub use bindings::holdfast::backup::volume::{
    Chunk, ChunkStream, HeldBytes, ReadOptions, Source, StoredDigests, Target, WriteCheck,
};

/// Stamp the driver's name and its crate's version into the component: a custom
/// section (`holdfast-driver`) the host reads, before running anything, as the
/// driver's id — shown by `holdfast plugin list` and recorded with every backup.
/// [`chunked_driver!`] does it; a hand-written driver calls it once.
#[macro_export]
macro_rules! driver_manifest {
    ($name:literal) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            const TEXT: &str = concat!(
                "name=",
                $name,
                "\nversion=",
                env!("CARGO_PKG_VERSION"),
                "\nwit=",
                $crate::wit_version!(),
                "\n"
            );
            #[unsafe(link_section = "holdfast-driver")]
            #[used]
            static MANIFEST: [u8; TEXT.len()] = $crate::manifest_bytes(TEXT);
        };
    };
}

/// The `holdfast:backup` version this SDK builds drivers for, as a literal (for
/// `concat!`); [`WIT_VERSION`] is the same as a constant.
#[doc(hidden)]
#[macro_export]
macro_rules! wit_version {
    () => {
        "0.2.8"
    };
}

pub const WIT_VERSION: &str = wit_version!();

#[doc(hidden)]
pub const fn manifest_bytes<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Log into the host's tracing, inside the span of the current backup.
pub fn log(level: Level, message: impl AsRef<str>) {
    host::log(level, message.as_ref());
}

/// The WIT enum and the host's vocabulary (`holdfast_types::Compression`, where the
/// names are spelled) convert one to one.
impl From<Compression> for holdfast_types::Compression {
    fn from(c: Compression) -> Self {
        match c {
            Compression::None => Self::None,
            Compression::Zlib => Self::Zlib,
            Compression::Gzip => Self::Gzip,
            Compression::Bz2 => Self::Bz2,
            Compression::Bzip2 => Self::Bzip2,
            Compression::Zstd => Self::Zstd,
        }
    }
}

impl From<holdfast_types::Compression> for Compression {
    fn from(c: holdfast_types::Compression) -> Self {
        use holdfast_types::Compression as C;
        match c {
            C::None => Self::None,
            C::Zlib => Self::Zlib,
            C::Gzip => Self::Gzip,
            C::Bz2 => Self::Bz2,
            C::Bzip2 => Self::Bzip2,
            C::Zstd => Self::Zstd,
        }
    }
}

impl Compression {
    /// Cinder's recorded name.
    pub fn name(self) -> &'static str {
        holdfast_types::Compression::from(self).name()
    }

    /// Parse a configured or recorded name with Cinder's aliases, case-insensitively.
    pub fn parse(name: &str) -> Option<Compression> {
        holdfast_types::Compression::parse(name).ok().map(Into::into)
    }
}
