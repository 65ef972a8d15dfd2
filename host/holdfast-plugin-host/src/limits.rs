//! Limits on what a guest can make the host do. Each is a reasoned constant.

/// Linear memory of one driver instance. A driver holds at most one stored object
/// (≤ 64 MiB, the host's chunk cap) plus its own state.
pub const MEMORY_BYTES: usize = 256 << 20;

/// Instances, tables and memories per store: one driver component needs a handful.
pub const INSTANCES: usize = 32;
pub const TABLES: usize = 64;
pub const MEMORIES: usize = 32;

/// Resource handles a guest may hold at once (chunks, streams): a guest that leaks
/// handles fails instead of growing host memory. Each chunk pins its stored bytes.
pub const MAX_LIVE_CHUNKS: usize = 4;

/// Largest raw read a guest may request from a chunk in one call.
pub const MAX_CHUNK_READ: u32 = 16 << 20;

/// Ranges a driver may ask one chunk stream to read (16 bytes of host memory each).
pub const MAX_READ_EXTENTS: usize = 1 << 20;

/// Longest snapshot name a driver may pass to `changed-extents`.
pub const MAX_SNAPSHOT_NAME: usize = 255;

/// Epoch ticks a cancelled guest may keep running (to clean up) before it is
/// interrupted: 500 × 10 ms = 5 s.
pub const CANCEL_GRACE_TICKS: u32 = 500;

/// How often the epoch ticks; a cancelled guest stops within about this long even
/// if it never calls the host.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);
