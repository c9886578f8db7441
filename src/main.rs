//! The `zim-operator` binary: parses the command line and runs the chosen command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use zim_operator::{cmd_apply, cmd_import, cmd_plan, cmd_run, cmd_simulate, telemetry};

/// The exit codes of `crd`, as `--help` shows them (and docs/running.md lists them).
const CRD_EXIT_CODES: &str = "Exit codes:
  0  the CRD was printed";

/// Kubernetes operator that makes ZEGO ZIM chat rooms declarative.
#[derive(Parser)]
#[command(
    name = "zim-operator",
    version,
    about,
    after_help = "Exit codes: each command's --help lists its own; 2 is a usage error in every command."
)]
struct Cli {
    /// Log format.
    #[arg(long, env = "ZIM_LOG_FORMAT", value_enum, default_value_t, global = true)]
    log_format: telemetry::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller: reconcile ZimRooms in a Kubernetes cluster.
    Run(Box<cmd_run::RunArgs>),
    /// Run the ZIM server-API simulator (for development and tests).
    Simulate(cmd_simulate::SimulateArgs),
    /// Reconcile ZimRoom manifests once, without a cluster, and print them with their resulting status.
    Apply(cmd_apply::ApplyArgs),
    /// Show what `apply` (and so the operator) would do for ZimRoom manifests, with read-only ZIM calls.
    Plan(cmd_plan::PlanArgs),
    /// Check ZimRoom manifests offline with the same rules as the cluster and the operator.
    Validate(cmd_apply::ValidateArgs),
    /// Print ZimRoom manifests for rooms that already exist in ZIM (to observe or adopt them).
    Import(cmd_import::ImportArgs),
    /// Print the CustomResourceDefinitions (ZimRoom, then ZimRoomSet) as YAML documents.
    #[command(after_help = CRD_EXIT_CODES)]
    Crd {
        /// Print only this kind's CRD.
        #[arg(long, value_parser = ["ZimRoom", "ZimRoomSet"])]
        kind: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate(args) => {
            telemetry::init(cli.log_format, "info");
            cmd_simulate::run(args).await.map(|_| ExitCode::SUCCESS).map_err(|e| e.to_string())
        }
        Command::Run(args) => {
            telemetry::init(cli.log_format, "info");
            cmd_run::run(*args).await
        }
        Command::Apply(args) => {
            telemetry::init(cli.log_format, "warn");
            Ok(cmd_apply::apply(args).await)
        }
        Command::Plan(args) => {
            telemetry::init(cli.log_format, "warn");
            Ok(cmd_plan::plan(args).await)
        }
        Command::Validate(args) => Ok(cmd_apply::validate(args)),
        Command::Import(args) => {
            telemetry::init(cli.log_format, "warn");
            Ok(cmd_import::import(args).await)
        }
        Command::Crd { kind } => {
            match kind.as_deref() {
                Some("ZimRoom") => print!("{}", zim_operator::crd::crd_yaml()),
                Some(_) => print!("{}", zim_operator::crd::set_crd_yaml()),
                None => print!("{}---\n{}", zim_operator::crd::crd_yaml(), zim_operator::crd::set_crd_yaml()),
            }
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            // Once: a plain line for a person, or one JSON log line for a log collector.
            match cli.log_format {
                telemetry::LogFormat::Text => eprintln!("error: {message}"),
                telemetry::LogFormat::Json => tracing::error!("{message}"),
            }
            ExitCode::from(2)
        }
    }
}
