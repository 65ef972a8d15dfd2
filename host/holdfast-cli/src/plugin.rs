//! `holdfast plugin ...` (admin): the backends' drivers, and a reload of the server's
//! `--config` file.

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::args::ClientArgs;
use crate::client::{Client, on_own_thread};
use crate::output;

/// Columns of `holdfast plugin list`: (header, JSON key).
const LIST_COLUMNS: &[(&str, &str)] = &[
    ("Backend", "backend"),
    ("Zone", "availability_zone"),
    ("Driver", "driver"),
    ("Version", "version"),
    ("WIT", "wit_version"),
    ("Confined", "confined"),
    ("State", "state"),
    ("Running", "operations_running"),
    ("Last reload error", "last_reload_error"),
];

/// The server's backends and their drivers (admin only).
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum PluginCommand {
    /// List each backend: driver, version, WIT version, state, operations running
    List,
    /// Show one backend's driver in full (digest, load time, why it is down)
    Show {
        /// Backend name (as in the server's --config)
        #[arg(value_name = "BACKEND")]
        backend: String,
    },
    /// Re-read the server's --config: add, upgrade and remove backends without a restart
    Reload {
        /// Remove backends that still hold backups, keeping them as unavailable
        #[arg(long)]
        force: bool,
    },
}

/// Runs one `holdfast plugin ...` command against the server in `args`.
pub fn run_plugin(args: &ClientArgs, cmd: PluginCommand) -> Result<()> {
    on_own_thread(|| execute(args, cmd))
}

fn execute(args: &ClientArgs, cmd: PluginCommand) -> Result<()> {
    let client = Client::new(args)?;
    let format = args.format;
    let text = match cmd {
        PluginCommand::List => output::list(format, &client.get(&["holdfast-plugins"])?, "plugins", LIST_COLUMNS)?,
        PluginCommand::Show { backend } => {
            let reply = client.get(&["holdfast-plugins"])?;
            let found =
                reply["plugins"].as_array().and_then(|all| all.iter().find(|p| p["backend"] == backend.as_str()));
            let Some(found) = found else { bail!("no backend named {backend:?} (see `holdfast plugin list`)") };
            output::object(format, &json!({"plugin": found}), "plugin")
        }
        PluginCommand::Reload { force } => {
            let reply = client.post(&["holdfast-plugins", "reload"], &json!({"reload": {"force": force}}))?;
            if format.is_json() { output::json(&reply) } else { summary(&reply["reload"]) }
        }
    };
    output::emit(&text)
}

/// One line per kind of change, and one per backend the reload left alone.
fn summary(r: &Value) -> String {
    let names = |k: &str| {
        let v: Vec<&str> = r[k].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        if v.is_empty() { "-".to_owned() } else { v.join(", ") }
    };
    let mut out = format!(
        "Added: {}\nUpgraded: {}\nRemoved: {}\nUnchanged: {}\nDefault backend: {}\n",
        names("added"),
        names("upgraded"),
        names("removed"),
        names("unchanged"),
        r["default_backend"].as_str().unwrap_or("-"),
    );
    for f in r["failed"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "Not changed: {}: {}\n",
            f["backend"].as_str().unwrap_or("?"),
            f["reason"].as_str().unwrap_or("?")
        ));
    }
    out
}
