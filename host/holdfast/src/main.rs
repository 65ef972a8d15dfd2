//! `holdfast`: the server (`serve`), the client commands (`volume`, `backup`) and the
//! benchmark (`bench`). `anyhow` lives here, at the edge; the libraries use typed errors.

mod allocator;
mod bench;
mod bench_api;
mod bench_ceiling;
mod bench_objects;
mod bench_plugins;
mod bench_rbd;
mod bench_sandbox;
mod bench_volume;
mod config;
mod driver_check;
mod native_posix;
mod reload;
mod serve;
mod sqlite_alloc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "holdfast",
    version,
    about = "Holdfast: the OpenStack Cinder backup service, with sandboxed WebAssembly backup drivers",
    long_about = "Holdfast: the OpenStack Cinder backup service, with sandboxed WebAssembly backup drivers.\n\n\
                  Start the server with `holdfast serve`; then drive it with `holdfast volume …` and \
                  `holdfast backup …`, or with any Cinder v3 client (cinderclient, openstackclient)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the backup service: HTTP API, manager and the backup driver.
    Serve(Box<serve::ServeArgs>),
    /// Create, adopt, list and delete volumes (talks to a running server).
    Volume {
        #[command(flatten)]
        client: holdfast_cli::ClientArgs,
        #[command(subcommand)]
        command: holdfast_cli::VolumeCommand,
    },
    /// Create, list, restore and delete backups (talks to a running server).
    Backup {
        #[command(flatten)]
        client: holdfast_cli::ClientArgs,
        #[command(subcommand)]
        command: holdfast_cli::BackupCommand,
    },
    /// Take, list and delete volume snapshots (talks to a running server).
    Snapshot {
        #[command(flatten)]
        client: holdfast_cli::ClientArgs,
        #[command(subcommand)]
        command: holdfast_cli::SnapshotCommand,
    },
    /// List or follow the backup notifications (backup.create.start, …progress, …end).
    Event {
        #[command(flatten)]
        client: holdfast_cli::ClientArgs,
        #[command(subcommand)]
        command: holdfast_cli::EventCommand,
    },
    /// Admin: the server's backends and drivers; reload its --config without a restart.
    Plugin {
        #[command(flatten)]
        client: holdfast_cli::ClientArgs,
        #[command(subcommand)]
        command: holdfast_cli::PluginCommand,
    },
    /// For driver authors: check a driver component against the contract.
    Driver {
        #[command(subcommand)]
        command: DriverCommand,
    },
    /// Measure full-backup and restore throughput and peak memory on a generated volume.
    Bench(bench::BenchArgs),
}

#[derive(Subcommand)]
enum DriverCommand {
    /// Run a driver through the lifecycle on a scratch volume (setup, full and
    /// incremental backup, restores bit for bit, a restart, records, cancel, delete);
    /// one PASS/FAIL line per case, exit status 1 if any failed.
    Check(driver_check::CheckArgs),
}

fn main() {
    allocator::purge_freed_memory_at_once();
    allocator::arena_in_small_pages();
    sqlite_alloc::install();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Volume { client, command } => holdfast_cli::run_volume(&client, command),
        Command::Backup { client, command } => holdfast_cli::run_backup(&client, command),
        Command::Snapshot { client, command } => holdfast_cli::run_snapshot(&client, command),
        Command::Event { client, command } => holdfast_cli::run_event(&client, command),
        Command::Plugin { client, command } => holdfast_cli::run_plugin(&client, command),
        Command::Driver { command: DriverCommand::Check(args) } => driver_check::run(args),
        Command::Bench(args) => bench::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
