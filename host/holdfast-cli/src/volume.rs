//! `holdfast volume ...`: create, register (adopt), list, show and delete volumes.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};

use crate::args::ClientArgs;
use crate::client::{Client, on_own_thread};
use crate::output;
use crate::resolve::{Kind, resolve, show};

/// Columns of `holdfast volume list`: (header, JSON key).
const LIST_COLUMNS: &[(&str, &str)] =
    &[("ID", "id"), ("Name", "name"), ("Status", "status"), ("Size (GiB)", "size"), ("Path", "holdfast:path")];

/// Manage volumes (the disks Holdfast backs up).
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum VolumeCommand {
    /// Create a new, empty volume of the given size
    Create {
        /// Size of the volume in GiB
        #[arg(long, value_name = "GIB", value_parser = clap::value_parser!(u64).range(1..))]
        size: u64,
        /// Display name of the volume
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Free-form description of the volume
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Register an existing raw image file or block device as a volume
    ///
    /// This is Cinder's "manage existing": the server adopts the file or
    /// device in place, without copying or changing its data.
    Register {
        /// File or block device to adopt (relative paths are made absolute), or an
        /// RBD image as rbd:POOL/IMAGE
        ///
        /// A path is sent as an absolute path, so the server must see the
        /// same file system; the last component is kept as given (device
        /// links like /dev/disk/by-id/... stay stable). An RBD image is in the
        /// cluster the server was started with (`serve --rbd-conf`).
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// Display name of the volume
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// List all volumes of the project
    List,
    /// Show the details of one volume
    Show {
        /// Volume id, or its name if unique
        #[arg(value_name = "VOLUME")]
        volume: String,
    },
    /// Delete a volume (its backups are kept)
    Delete {
        /// Volume id, or its name if unique
        #[arg(value_name = "VOLUME")]
        volume: String,
    },
}

/// Runs one `holdfast volume ...` command against the server in `args`,
/// printing its result on stdout.
pub fn run_volume(args: &ClientArgs, cmd: VolumeCommand) -> Result<()> {
    on_own_thread(|| execute(args, cmd))
}

fn execute(args: &ClientArgs, cmd: VolumeCommand) -> Result<()> {
    let client = Client::new(args)?;
    let format = args.format;
    let text = match cmd {
        VolumeCommand::Create { size, name, description } => {
            let body = json!({"volume": {"size": size, "name": name, "description": description}});
            let reply = client.post(&["volumes"], &body)?;
            output::object(format, &reply, "volume")
        }
        VolumeCommand::Register { path, name } => {
            // `rbd:POOL/IMAGE` names an RBD image; anything else is a path here.
            let source = match path.to_str().filter(|p| p.starts_with("rbd:")) {
                Some(spec) => spec.to_owned(),
                None => source_name(&path)?,
            };
            let body = json!({"volume": {"ref": {"source-name": source}, "name": name}});
            let reply = client.post(&["os-volume-manage"], &body)?;
            output::object(format, &reply, "volume")
        }
        VolumeCommand::List => {
            let reply = client.get(&["volumes", "detail"])?;
            output::list(format, &reply, "volumes", LIST_COLUMNS)?
        }
        VolumeCommand::Show { volume } => output::object(format, &show(&client, Kind::Volume, &volume)?, "volume"),
        VolumeCommand::Delete { volume } => {
            let id = resolve(&client, Kind::Volume, &volume)?.id;
            let reply = client.delete(&["volumes", &id])?;
            deleted(format, &id, &reply)
        }
    };
    output::emit(&text)
}

/// What `volume delete` prints: the server's reply if it sent one, else a
/// Cinder-shaped stand-in for `--format json`, or a sentence.
fn deleted(format: crate::OutputFormat, id: &str, reply: &Value) -> String {
    if !format.is_json() {
        return format!("Deleting volume {id}\n");
    }
    let reply = match reply {
        Value::Null => json!({"volume": {"id": id, "status": "deleting"}}),
        other => other.clone(),
    };
    output::json(&reply)
}

/// The `source-name` sent to the server: `path` made absolute. Directories
/// along the way are canonicalized (resolving `..` and symlinked dirs) when
/// they exist here, but the last component is kept as named so stable device
/// links such as `/dev/disk/by-id/...` are not replaced by `/dev/sdX`.
fn source_name(path: &Path) -> Result<String> {
    let absolute = absolute_path(path)?;
    absolute.to_str().map(str::to_owned).ok_or_else(|| anyhow!("path {} is not valid UTF-8", absolute.display()))
}

fn absolute_path(path: &Path) -> Result<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(anyhow!("the path must not be empty"));
    }
    let absolute = std::path::absolute(path).with_context(|| format!("cannot make {} absolute", path.display()))?;
    let canonical = match (absolute.parent(), absolute.file_name()) {
        (Some(dir), Some(name)) => fs::canonicalize(dir).ok().map(|dir| dir.join(name)),
        _ => None,
    };
    Ok(canonical.unwrap_or(absolute))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OutputFormat;

    #[test]
    fn relative_paths_become_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let real = fs::canonicalize(dir.path()).unwrap();
        fs::create_dir(real.join("sub")).unwrap();
        let messy = dir.path().join("sub").join("..").join("disk.img");
        assert_eq!(absolute_path(&messy).unwrap(), real.join("disk.img"));

        let cwd = std::env::current_dir().unwrap();
        let rel = absolute_path(Path::new("disk.img")).unwrap();
        assert_eq!(rel, fs::canonicalize(&cwd).unwrap().join("disk.img"));
        assert!(absolute_path(Path::new("")).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn final_symlink_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let real = fs::canonicalize(dir.path()).unwrap();
        fs::write(real.join("target.img"), b"x").unwrap();
        std::os::unix::fs::symlink(real.join("target.img"), real.join("link")).unwrap();
        assert_eq!(source_name(&real.join("link")).unwrap(), real.join("link").to_str().unwrap());
    }

    #[test]
    fn missing_parent_still_gives_an_absolute_path() {
        let p = absolute_path(Path::new("/no/such/dir/disk.img")).unwrap();
        assert_eq!(p, PathBuf::from("/no/such/dir/disk.img"));
    }

    #[test]
    fn delete_output() {
        assert_eq!(deleted(OutputFormat::Table, "v1", &Value::Null), "Deleting volume v1\n");
        let out: Value = serde_json::from_str(&deleted(OutputFormat::Json, "v1", &Value::Null)).unwrap();
        assert_eq!(out, json!({"volume": {"id": "v1", "status": "deleting"}}));
    }
}
