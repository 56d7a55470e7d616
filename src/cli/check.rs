//! `mcp-gate check URL [--token T]`: walk the discovery an MCP client performs and print what breaks.

use std::process::ExitCode;

/// Runs `mcp-gate check`: exit 0 without a ✗, 1 with one, 2 for a bad argument.
pub(super) fn run(matches: &clap::ArgMatches) -> ExitCode {
    let raw = matches.get_one::<String>("url").map(String::as_str);
    let target = match crate::check::parse_target(raw.unwrap_or_default()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mcp-gate check: {e}");
            return ExitCode::from(2);
        }
    };
    let raw_timeout = matches
        .get_one::<String>("timeout")
        .map(String::as_str)
        .unwrap_or("10s");
    let timeout = match humantime::parse_duration(raw_timeout) {
        Ok(t) if !t.is_zero() => t,
        _ => {
            eprintln!("mcp-gate check: --timeout {raw_timeout:?} is not a duration such as 10s");
            return ExitCode::from(2);
        }
    };
    let token = matches.get_one::<String>("token").map(String::as_str);
    let runtime = match super::client_runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mcp-gate check: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = crate::check::Options {
        token,
        timeout,
        follow_cross_origin: matches.get_flag("follow-cross-origin"),
    };
    let report = runtime.block_on(crate::check::run(&target, &options));
    if matches.get_flag("json") {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
