//! Holdfast's vocabulary, shared by every host crate and free of I/O.
//!
//! - [`status`]: backup and volume statuses, spelled as Cinder spells them.
//! - [`record`]: the rows the manager works on ([`Backup`], [`Volume`]).
//! - [`compression`]: Cinder's compression names ([`Compression`]).
//! - [`event`]: notification names ([`EventType`]).
//! - [`extent`]: byte ranges of a volume ([`Extent`]).
//! - [`location`]: where a volume's data lives ([`VolumeLocation`]).
//! - [`time`]: UTC timestamps and the three ways Cinder prints them.

pub mod compression;
pub mod event;
pub mod extent;
pub mod location;
pub mod record;
pub mod setting;
pub mod status;
pub mod time;

pub use compression::{Compression, UnknownCompression};
pub use event::{EventOp, EventPhase, EventType, UnknownEventType};
pub use extent::Extent;
pub use location::{RBD_PREFIX, RbdSpec, UnknownLocation, VolumeLocation};
pub use record::{
    Backup, BackupOrigin, Event, GIB, MIB, Snapshot, Volume, is_valid_container, is_valid_metadata_key,
    is_valid_metadata_value, is_valid_object_prefix, size_gib,
};
pub use setting::{CALLER_PROJECT_SETTING, HOST_SETTING_PREFIX};
pub use status::{BackupStatus, SnapshotStatus, UnknownStatus, VolumeStatus};
pub use time::Timestamp;
