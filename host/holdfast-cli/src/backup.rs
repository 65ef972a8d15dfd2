//! `holdfast backup ...`: create, list, show, delete and restore backups,
//! optionally waiting (`--wait`) for the operation to finish.

use anyhow::{Result, anyhow};
use serde_json::{Value, json};

use crate::args::{ClientArgs, OutputFormat};
use crate::client::{Client, on_own_thread};
use crate::output;
use crate::resolve::{Kind, resolve, show};
use crate::wait;

/// Columns of `holdfast backup list`: (header, JSON key).
const LIST_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("Volume ID", "volume_id"),
    ("Name", "name"),
    ("Status", "status"),
    ("Size", "size"),
    ("Object Count", "object_count"),
    ("Created At", "created_at"),
];

/// Manage backups of volumes.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum BackupCommand {
    /// Back up a volume (a full backup)
    Create {
        /// Volume to back up: its id, or its name if unique
        #[arg(value_name = "VOLUME")]
        volume: String,
        /// Display name of the backup
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Free-form description of the backup
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// Backup container (storage location) to write to; the server's default if omitted
        #[arg(long, value_name = "CONTAINER")]
        container: Option<String>,
        /// Store only the blocks changed since the volume's newest available backup
        /// (its parent); the first backup of a volume must be full
        #[arg(long)]
        incremental: bool,
        /// Back up an in-use (attached) volume; the data is crash-consistent
        #[arg(long)]
        force: bool,
        /// Back up this snapshot of the volume (id or unique name) instead of the live volume
        #[arg(long, value_name = "SNAPSHOT")]
        snapshot: Option<String>,
        /// Wait until the backup is available, showing progress on stderr
        #[arg(long)]
        wait: bool,
    },
    /// List all backups of the project
    List,
    /// Show the details of one backup
    Show {
        /// Backup id, or its name if unique
        #[arg(value_name = "BACKUP")]
        backup: String,
    },
    /// Delete a backup and its stored data
    Delete {
        /// Backup id, or its name if unique
        #[arg(value_name = "BACKUP")]
        backup: String,
        /// Admin: delete whatever the status (os-force_delete); a backup still being
        /// created is cancelled and its partial objects removed
        #[arg(long)]
        force: bool,
        /// Wait until the backup is gone, showing progress on stderr
        #[arg(long)]
        wait: bool,
    },
    /// Admin: set a backup's status to available or error (os-reset_status); a running
    /// restore of it is cancelled and its target volume left in error
    ResetState {
        /// Backup id, or its name if unique
        #[arg(value_name = "BACKUP")]
        backup: String,
        /// The new status
        #[arg(long, value_name = "STATE", default_value = "available", value_parser = ["available", "error"])]
        state: String,
    },
    /// Restore a backup onto an existing volume, or onto a new one
    Restore {
        /// Backup to restore: its id, or its name if unique
        #[arg(value_name = "BACKUP")]
        backup: String,
        /// Existing volume to overwrite (id or unique name); a new volume is created if omitted
        #[arg(long, value_name = "VOLUME")]
        volume: Option<String>,
        /// Name for the new volume (only used without --volume). Default: BACKUP-restored
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Wait until the restore finishes, showing progress on stderr
        #[arg(long)]
        wait: bool,
    },
    /// Print a backup's export record (backup_service and backup_url): with it the
    /// backup can be imported into another Holdfast or Cinder, e.g. after losing the database
    Export {
        /// Backup id, or its name if unique
        #[arg(value_name = "BACKUP")]
        backup: String,
    },
    /// Import a backup record printed by `backup export` (the backup's objects must be
    /// in this server's backup store)
    Import {
        /// The record's backup_service, e.g. cinder.backup.drivers.posix.PosixBackupDriver
        #[arg(value_name = "SERVICE")]
        backup_service: String,
        /// The record's backup_url (base64)
        #[arg(value_name = "URL")]
        backup_url: String,
    },
}

/// Runs one `holdfast backup ...` command against the server in `args`,
/// printing its result on stdout.
pub fn run_backup(args: &ClientArgs, cmd: BackupCommand) -> Result<()> {
    on_own_thread(|| execute(args, cmd))
}

fn execute(args: &ClientArgs, cmd: BackupCommand) -> Result<()> {
    let client = Client::new(args)?;
    let format = args.format;
    // The bar goes to stderr; JSON mode keeps the terminal quiet for scripts.
    let show_bar = !format.is_json();
    let text = match cmd {
        BackupCommand::Create { volume, name, description, container, incremental, force, snapshot, wait } => {
            let volume_id = resolve(&client, Kind::Volume, &volume)?.id;
            let body = json!({"backup": {
                "volume_id": volume_id,
                "name": name,
                "description": description,
                "container": container,
                "incremental": incremental,
                "force": force,
                "snapshot_id": snapshot.map(|s| crate::snapshot::snapshot_id(&client, &s)).transpose()?,
            }});
            let reply = client.post(&["backups"], &body)?;
            if wait {
                let id = reply_str(&reply, "backup", "id")?;
                let done = wait::backup_created(&client, id, show_bar)?;
                output::object(format, &done, "backup")
            } else {
                output::object(format, &reply, "backup")
            }
        }
        BackupCommand::List => {
            let reply = client.get(&["backups", "detail"])?;
            output::list(format, &reply, "backups", LIST_COLUMNS)?
        }
        BackupCommand::Export { backup } => {
            let id = resolve(&client, Kind::Backup, &backup)?.id;
            let reply = client.get(&["backups", &id, "export_record"])?;
            output::object(format, &reply, "backup-record")
        }
        BackupCommand::Import { backup_service, backup_url } => {
            let body = json!({"backup-record": {"backup_service": backup_service, "backup_url": backup_url}});
            let reply = client.post(&["backups", "import_record"], &body)?;
            output::object(format, &reply, "backup")
        }
        BackupCommand::Show { backup } => output::object(format, &show(&client, Kind::Backup, &backup)?, "backup"),
        BackupCommand::ResetState { backup, state } => {
            let id = resolve(&client, Kind::Backup, &backup)?.id;
            client.post(&["backups", &id, "action"], &json!({"os-reset_status": {"status": state}}))?;
            let reply = client.get(&["backups", &id])?;
            output::object(format, &reply, "backup")
        }
        BackupCommand::Delete { backup, force, wait } => {
            let id = resolve(&client, Kind::Backup, &backup)?.id;
            if force {
                client.post(&["backups", &id, "action"], &json!({"os-force_delete": null}))?;
            } else {
                client.delete(&["backups", &id])?;
            }
            if wait {
                wait::backup_deleted(&client, &id, show_bar)?;
            }
            deleted(format, &id, wait)
        }
        BackupCommand::Restore { backup, volume, name, wait } => {
            let id = resolve(&client, Kind::Backup, &backup)?.id;
            let volume_id = volume.map(|v| resolve(&client, Kind::Volume, &v).map(|found| found.id)).transpose()?;
            // Cinder names an unnamed new volume after the source volume, so the next
            // command by that name would find two: give it a name of its own.
            let name = match (&volume_id, name) {
                (None, None) => Some(format!("{backup}-restored")),
                (_, name) => name,
            };
            let body = json!({"restore": {"volume_id": volume_id, "name": name}});
            let reply = client.post(&["backups", &id, "restore"], &body)?;
            if wait {
                let volume_id = reply_str(&reply, "restore", "volume_id")?;
                let volume = wait::backup_restored(&client, &id, volume_id, show_bar)?;
                output::object(format, &volume, "volume")
            } else {
                output::object(format, &reply, "restore")
            }
        }
    };
    output::emit(&text)
}

/// `reply[wrapper][field]` as a string, or an error naming what is missing.
fn reply_str<'a>(reply: &'a Value, wrapper: &str, field: &str) -> Result<&'a str> {
    reply
        .get(wrapper)
        .and_then(|inner| inner.get(field))
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the server's reply has no {wrapper}.{field}"))
}

/// What `backup delete` prints. The server's 202 has no body, so JSON mode
/// prints a Cinder-shaped stand-in with status `deleting` (or `deleted` after
/// `--wait`).
fn deleted(format: OutputFormat, id: &str, waited: bool) -> String {
    match (format.is_json(), waited) {
        (false, true) => format!("Deleted backup {id}\n"),
        (false, false) => format!("Deleting backup {id}\n"),
        (true, _) => {
            let status = if waited { "deleted" } else { "deleting" };
            output::json(&json!({"backup": {"id": id, "status": status}}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stub::{Reply, Stub};

    #[test]
    fn reply_fields() {
        let reply = json!({"restore": {"backup_id": "b", "volume_id": "v"}});
        assert_eq!(reply_str(&reply, "restore", "volume_id").unwrap(), "v");
        let err = reply_str(&reply, "backup", "id").unwrap_err().to_string();
        assert_eq!(err, "the server's reply has no backup.id");
    }

    #[test]
    fn delete_messages() {
        assert_eq!(deleted(OutputFormat::Table, "b1", true), "Deleted backup b1\n");
        assert_eq!(deleted(OutputFormat::Table, "b1", false), "Deleting backup b1\n");
        let out: Value = serde_json::from_str(&deleted(OutputFormat::Json, "b1", true)).unwrap();
        assert_eq!(out, json!({"backup": {"id": "b1", "status": "deleted"}}));
    }

    #[test]
    fn create_sends_cinder_body_for_resolved_volume() {
        let stub = Stub::start(|r| match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/v3/p/volumes/db") => Reply::json(404, ""),
            ("GET", "/v3/p/volumes/detail?name=db") => Reply::json(200, r#"{"volumes": [{"id": "v7", "name": "db"}]}"#),
            ("POST", "/v3/p/backups") => Reply::json(202, r#"{"backup": {"id": "b1", "name": "n", "links": []}}"#),
            _ => Reply::json(500, "unexpected"),
        });
        let args = ClientArgs { url: stub.url(), project: "p".into(), format: OutputFormat::Json, token: None };
        let cmd = BackupCommand::Create {
            volume: "db".into(),
            name: Some("n".into()),
            description: None,
            container: None,
            incremental: false,
            force: false,
            snapshot: None,
            wait: false,
        };
        run_backup(&args, cmd).unwrap();
        let post = stub.requests().pop().unwrap();
        assert_eq!(
            post.json(),
            json!({"backup": {"volume_id": "v7", "name": "n", "description": null,
                "container": null, "incremental": false, "force": false, "snapshot_id": null}})
        );
    }
}
