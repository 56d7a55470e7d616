//! The command line: parse, then dispatch to `serve` (the default), `healthcheck` or `check`.
//!
//! Every setting is a flag and an environment variable at once (from [`crate::config::SETTINGS`]);
//! `main.rs` only calls [`main`].

mod check;
mod healthcheck;
mod serve;

use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};

use crate::config::SETTINGS;

/// `--kebab-case` flag for a variable name.
fn flag(var: &str) -> String {
    var.to_ascii_lowercase().replace('_', "-")
}

fn command() -> Command {
    let mut cmd = Command::new("mcp-gate")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Authentication gate for MCP servers: RFC 9728 metadata, Bearer JWT checks, streaming reverse proxy")
        .after_help("Every option can also be set by the environment variable shown; flags take precedence.")
        .subcommand(
            Command::new("healthcheck")
                .about("Exit 0 when the gate at LISTEN_ADDR answers 200 on READY_PATH (for container health checks)"),
        )
        .subcommand(
            Command::new("check")
                .about("Walk the discovery an MCP client performs against URL and say what would break (exit 1 on any ✗)")
                .arg(
                    Arg::new("url")
                        .value_name("URL")
                        .required(true)
                        .help("The MCP endpoint exactly as users enter it, e.g. https://mcp.example.com/mcp"),
                )
                .arg(
                    Arg::new("token")
                        .long("token")
                        .value_name("TOKEN")
                        .env("MCP_GATE_CHECK_TOKEN")
                        .hide_env_values(true)
                        .help("An access token to check against what was discovered; never printed"),
                )
                .arg(
                    Arg::new("json")
                        .long("json")
                        .action(ArgAction::SetTrue)
                        .help("Print the checks as a JSON array of {id, status, message, hint}"),
                )
                .arg(
                    Arg::new("timeout")
                        .long("timeout")
                        .value_name("DURATION")
                        .default_value("10s")
                        .help("Bound on each request"),
                )
                .arg(
                    Arg::new("follow-cross-origin")
                        .long("follow-cross-origin")
                        .action(ArgAction::SetTrue)
                        .help("Also fetch a resource_metadata the endpoint's 401 names on another origin (off: an endpoint could point the check at an internal address)"),
                ),
        );
    for s in SETTINGS {
        let mut arg = Arg::new(s.var.name())
            .long(flag(&s.var))
            .env(s.var.name())
            .value_name("VALUE")
            .help(s.help)
            .action(ArgAction::Set);
        if let Some(default) = s.default {
            arg = arg.default_value(default);
        }
        cmd = cmd.arg(arg);
    }
    cmd
}

/// Runs the command line and returns the process's exit status.
pub fn main() -> ExitCode {
    let matches = match command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if matches.subcommand_name() == Some("healthcheck") {
        return healthcheck::run(&matches);
    }
    if let Some(("check", sub)) = matches.subcommand() {
        return check::run(sub);
    }
    serve::run(&matches)
}

/// A single-threaded runtime for the short client commands (`check`, `healthcheck`).
fn client_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
