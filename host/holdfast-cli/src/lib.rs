//! Holdfast's command-line client.
//!
//! `holdfast volume ...` and `holdfast backup ...` talk to a running
//! `holdfast serve` over its OpenStack-Cinder-compatible v3 HTTP API; nothing
//! here touches volumes or backup storage directly. The binary crate embeds
//! [`ClientArgs`] (connection and output flags) next to [`VolumeCommand`] /
//! [`BackupCommand`] and hands them to [`run_volume`] / [`run_backup`].
//!
//! Module map:
//! - [`args`]: the shared `--url` / `--project` / `--format` flags.
//! - `client`: the blocking HTTP client, Cinder headers and transport errors.
//! - `fault`: turning Cinder-shaped error bodies into one readable line.
//! - `resolve`: accepting either an id or a unique name for a volume/backup.
//! - `volume` / `backup` / `snapshot` / `event` / `plugin`: the subcommands and what they print.
//! - `wait`: `--wait` polling with a progress bar; `progress`: its numbers.
//! - `output`: aligned tables, key/value listings and pretty JSON.

pub mod args;
mod backup;
mod client;
mod event;
mod fault;
mod output;
mod plugin;
mod progress;
mod resolve;
mod snapshot;
mod volume;
mod wait;

#[cfg(test)]
mod stub;

pub use args::{ClientArgs, OutputFormat};
pub use backup::{BackupCommand, run_backup};
pub use event::{EventCommand, run_event};
pub use plugin::{PluginCommand, run_plugin};
pub use snapshot::{SnapshotCommand, run_snapshot};
pub use volume::{VolumeCommand, run_volume};
