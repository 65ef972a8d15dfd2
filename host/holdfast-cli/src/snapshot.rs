//! `holdfast snapshot ...`: take, list, show and delete point-in-time copies of
//! volumes (`holdfast backup create VOLUME --snapshot SNAPSHOT` backs one up).

use anyhow::Result;
use serde_json::{Value, json};

use crate::args::ClientArgs;
use crate::client::{Client, on_own_thread};
use crate::output;
use crate::resolve::{Kind, resolve, show};
use crate::wait;

/// Columns of `holdfast snapshot list`: (header, JSON key).
const LIST_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("Volume ID", "volume_id"),
    ("Name", "name"),
    ("Status", "status"),
    ("Size", "size"),
    ("Created At", "created_at"),
];

/// Manage volume snapshots (point-in-time copies kept by the server).
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum SnapshotCommand {
    /// Take a snapshot of a volume: a reflink where the filesystem offers one, else a sparse copy
    Create {
        /// Volume to snapshot: its id, or its name if unique
        #[arg(value_name = "VOLUME")]
        volume: String,
        /// Display name of the snapshot
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Free-form description of the snapshot
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// Snapshot an in-use (attached) volume; the copy is crash-consistent
        #[arg(long)]
        force: bool,
        /// Wait until the snapshot is available
        #[arg(long)]
        wait: bool,
    },
    /// List all snapshots of the project
    List {
        /// Only the snapshots of this volume (id or unique name)
        #[arg(long, value_name = "VOLUME")]
        volume: Option<String>,
    },
    /// Show the details of one snapshot
    Show {
        /// Snapshot id, or its name if unique
        #[arg(value_name = "SNAPSHOT")]
        snapshot: String,
    },
    /// Delete a snapshot (backups taken from it are kept)
    Delete {
        /// Snapshot id, or its name if unique
        #[arg(value_name = "SNAPSHOT")]
        snapshot: String,
    },
}

/// Runs one `holdfast snapshot ...` command against the server in `args`.
pub fn run_snapshot(args: &ClientArgs, cmd: SnapshotCommand) -> Result<()> {
    on_own_thread(|| execute(args, cmd))
}

fn execute(args: &ClientArgs, cmd: SnapshotCommand) -> Result<()> {
    let client = Client::new(args)?;
    let format = args.format;
    let text = match cmd {
        SnapshotCommand::Create { volume, name, description, force, wait } => {
            let volume_id = resolve(&client, Kind::Volume, &volume)?.id;
            let body = json!({"snapshot": {
                "volume_id": volume_id, "name": name, "description": description, "force": force,
            }});
            let mut reply = client.post(&["snapshots"], &body)?;
            if wait {
                let id = reply["snapshot"]["id"].as_str().unwrap_or_default().to_owned();
                reply = wait::snapshot_created(&client, &id, !format.is_json())?;
            }
            output::object(format, &reply, "snapshot")
        }
        SnapshotCommand::List { volume } => {
            let reply = match volume {
                Some(v) => {
                    let id = resolve(&client, Kind::Volume, &v)?.id;
                    client.get_query(&["snapshots", "detail"], &[("volume_id", &id)])?
                }
                None => client.get(&["snapshots", "detail"])?,
            };
            output::list(format, &reply, "snapshots", LIST_COLUMNS)?
        }
        SnapshotCommand::Show { snapshot } => {
            output::object(format, &show(&client, Kind::Snapshot, &snapshot)?, "snapshot")
        }
        SnapshotCommand::Delete { snapshot } => {
            let id = resolve(&client, Kind::Snapshot, &snapshot)?.id;
            client.delete(&["snapshots", &id])?;
            if format.is_json() {
                output::json(&json!({"snapshot": {"id": id, "status": "deleted"}}))
            } else {
                format!("Deleted snapshot {id}\n")
            }
        }
    };
    output::emit(&text)
}

/// The id a `--snapshot` argument names (id or unique name).
pub fn snapshot_id(client: &Client, ident: &str) -> Result<Value> {
    Ok(Value::String(resolve(client, Kind::Snapshot, ident)?.id))
}
