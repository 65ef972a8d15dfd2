//! Flags shared by every client subcommand: where the server is, which
//! project to act as, and how to print results.

/// Default server URL: `holdfast serve` listens on the Cinder port locally.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8776";
/// Default project id: the hex spelling of "holdfast" (Cinder project ids are hex).
pub const DEFAULT_PROJECT: &str = "686f6c6466617374";

/// Help section the shared flags are listed under.
const HELP_HEADING: &str = "Client options";

/// Connection and output options for `holdfast volume ...` / `holdfast backup ...`.
///
/// All flags are `global`, so they may be given before or after the
/// subcommand (`holdfast backup list --format json`).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ClientArgs {
    /// Base URL of the Holdfast server (the Cinder v3 API lives under URL/v3/PROJECT)
    #[arg(
        long,
        env = "HOLDFAST_URL",
        default_value = DEFAULT_URL,
        value_name = "URL",
        global = true,
        help_heading = HELP_HEADING
    )]
    pub url: String,

    /// Project (tenant) id to act as; Cinder project ids are hex strings
    #[arg(
        long,
        env = "HOLDFAST_PROJECT",
        default_value = DEFAULT_PROJECT,
        value_name = "PROJECT",
        global = true,
        help_heading = HELP_HEADING
    )]
    pub project: String,

    /// Token to authenticate with. Default: the server's admin token from
    /// $HOLDFAST_DATA_DIR/admin-token (holdfast-data/admin-token), when readable
    #[arg(long, env = "HOLDFAST_TOKEN", hide_env_values = true, value_name = "TOKEN", global = true, help_heading = HELP_HEADING)]
    pub token: Option<String>,

    /// Output format: a readable table, or the server's JSON reply (pretty-printed) for scripts
    #[arg(
        long,
        value_enum,
        default_value_t = OutputFormat::Table,
        value_name = "FORMAT",
        global = true,
        help_heading = HELP_HEADING
    )]
    pub format: OutputFormat,
}

impl Default for ClientArgs {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            project: DEFAULT_PROJECT.to_owned(),
            token: None,
            format: OutputFormat::Table,
        }
    }
}

/// How command results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned table or key/value listing for humans
    #[default]
    Table,
    /// The Cinder-shaped JSON the server returned, pretty-printed
    Json,
}

impl OutputFormat {
    /// True for `--format json`.
    pub fn is_json(self) -> bool {
        self == Self::Json
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BackupCommand, VolumeCommand};
    use clap::{CommandFactory, Parser, Subcommand};

    /// Mirrors how the `holdfast` binary embeds the client commands.
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Top,
    }

    #[derive(Subcommand)]
    enum Top {
        Volume {
            #[command(flatten)]
            client: ClientArgs,
            #[command(subcommand)]
            cmd: VolumeCommand,
        },
        Backup {
            #[command(flatten)]
            client: ClientArgs,
            #[command(subcommand)]
            cmd: BackupCommand,
        },
    }

    fn parse(argv: &[&str]) -> Top {
        Cli::try_parse_from(argv).expect("parses").cmd
    }

    #[test]
    fn command_tree_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let Top::Volume { client, cmd } =
            parse(&["holdfast", "volume", "list", "--format", "json", "--url", "http://h:1"])
        else {
            panic!("expected volume");
        };
        assert!(matches!(cmd, VolumeCommand::List));
        assert_eq!(client.format, OutputFormat::Json);
        assert_eq!(client.url, "http://h:1");
    }

    #[test]
    fn backup_create_parses_flags() {
        let Top::Backup { client, cmd } = parse(&[
            "holdfast",
            "backup",
            "create",
            "vol1",
            "--name",
            "b",
            "--container",
            "c",
            "--incremental",
            "--wait",
        ]) else {
            panic!("expected backup");
        };
        assert_eq!(client.project, std::env::var("HOLDFAST_PROJECT").unwrap_or(DEFAULT_PROJECT.into()));
        let BackupCommand::Create { volume, name, container, incremental, wait, description, .. } = cmd else {
            panic!("expected create");
        };
        assert_eq!(volume, "vol1");
        assert_eq!(name.as_deref(), Some("b"));
        assert_eq!(container.as_deref(), Some("c"));
        assert_eq!(description, None);
        assert!(incremental);
        assert!(wait);
    }

    #[test]
    fn volume_create_rejects_zero_size() {
        assert!(Cli::try_parse_from(["holdfast", "volume", "create", "--size", "0"]).is_err());
        assert!(Cli::try_parse_from(["holdfast", "volume", "create", "--size", "x"]).is_err());
    }
}
