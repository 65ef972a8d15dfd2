//! Limits on what a guest can make the host do. Each is a reasoned constant.

use std::time::Duration;

/// Linear memory of one driver instance, across all its memories (the backend's
/// `memory` grant overrides it). A driver holds at most one stored object (≤ 64 MiB,
/// the host's chunk cap) plus its own state.
pub const MEMORY_BYTES: usize = 256 << 20;

/// Instances, tables and memories per store: a Rust driver component has 1 memory,
/// a handful of core instances and tables (wit-component's shims).
pub const INSTANCES: usize = 32;
pub const TABLES: usize = 16;
pub const MEMORIES: usize = 4;

/// Table elements across all of an instance's tables (8 bytes of host memory each).
pub const TABLE_ELEMENTS: usize = 1 << 20;

/// Chunk streams a guest may hold open at once (each runs reader and hashing threads).
pub const MAX_LIVE_STREAMS: usize = 2;

/// Largest object a guest may hand `target.write`: raw length, and its stored bytes
/// (compressed data of an incompressible chunk may be a little longer than it).
pub const MAX_WRITE_LENGTH: u64 = holdfast_chunk::pipeline::MAX_CHUNK_SIZE;
pub const MAX_WRITE_DATA: usize = (MAX_WRITE_LENGTH + (MAX_WRITE_LENGTH >> 6) + 4096) as usize;

/// Chunk handles a guest may hold at once: a guest that leaks handles fails instead of
/// growing host memory. An upload in flight keeps its chunk until the answer (the host
/// writes its stored bytes into the request, `chunk.write-stored`); the SDK keeps at
/// most [`MAX_LIVE_CHUNKS`] − 2 that way and copies the rest. A chunk's stored bytes
/// count against the driver's memory grant while it holds it, but a small piece may
/// keep the whole read (and output) buffer it was cut from, up to 2 × 64 MiB: so few.
pub const MAX_LIVE_CHUNKS: usize = 6;

/// `held-bytes` a guest may hold at once (their bytes count against its memory grant;
/// this bounds the handles themselves): an object store's downloads in flight (the
/// SDK allows 64) and a few more.
pub const MAX_LIVE_HELD: usize = 66;

/// Largest raw read a guest may request from a chunk in one call.
pub const MAX_CHUNK_READ: u32 = 16 << 20;

/// Ranges a driver may ask one chunk stream to read (16 bytes of host memory each).
pub const MAX_READ_EXTENTS: usize = 1 << 20;

/// Longest snapshot name a driver may pass to `changed-extents`.
pub const MAX_SNAPSHOT_NAME: usize = 255;

/// How long a cancelled guest may keep running (to clean up) before it is stopped.
pub const CANCEL_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// How often the epoch ticks: guest code yields to its watchdog this often, so a
/// stopped guest stops within about this long even if it never calls the host.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// Largest RADOS object a driver may write or read through `rbd` (Cinder's
/// `backup.<id>.meta` is a few KiB of JSON).
pub const MAX_RBD_OBJECT: usize = 4 << 20;

/// A call on an RBD backend's cluster (or a transfer, between pieces) that gets no
/// answer for this long is given up: the operation fails with the reason instead of
/// waiting on librbd for ever. Above librados's own 20 s timeouts, so a plain refusal
/// arrives first.
pub const RBD_QUIET: Duration = Duration::from_secs(60);

/// After a backend's cluster stopped answering, its calls fail at once for this long
/// rather than each waiting out its own timeout (the failed operation's cleanup).
pub const RBD_RESPITE: Duration = Duration::from_secs(10);

/// Before a backend connects to its cluster again, it waits this long at most for the
/// connection it dropped to close the images that work given up on still holds (their
/// requests end within librados's 20 s once the cluster answers or is gone). Inside
/// [`RBD_QUIET`] with room for the connect itself.
pub const RBD_LET_GO: Duration = Duration::from_secs(30);
