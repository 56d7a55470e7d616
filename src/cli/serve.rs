//! `mcp-gate` (serve): read the configuration, set up logging, serve until SIGTERM/SIGINT.

use std::collections::HashMap;
use std::process::ExitCode;

use crate::config::SETTINGS;
use crate::Config;

/// Serves with the settings in `matches` (flags over environment variables over defaults).
pub(super) fn run(matches: &clap::ArgMatches) -> ExitCode {
    let vars: HashMap<String, String> = SETTINGS
        .iter()
        .filter_map(|s| {
            matches
                .get_one::<String>(&s.var)
                .map(|v| (s.var.to_string(), v.clone()))
        })
        .collect();
    let (config, warnings) = match Config::from_vars(&vars) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mcp-gate: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let _log_flush = crate::logging::init(&config.log_level, config.log_format);
    for warning in warnings {
        tracing::warn!("{warning}");
    }

    // One usable core (CPU affinity or a cgroup quota, which std takes into account): a single-threaded
    // runtime skips the work-stealing machinery; measured ~7 % less CPU per proxied request here.
    let one_core = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let mut builder = if one_core {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mcp-gate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        // Warns about configurations that will break clients (issuer mismatch, unusable JWKS, …);
        // runs beside the gate and never blocks it.
        tokio::spawn(crate::check::startup_self_check(&config));
        let listener = tokio::net::TcpListener::bind(config.listen_addr)
            .await
            .map_err(|e| format!("cannot listen on LISTEN_ADDR={}: {e}", config.listen_addr))?;
        crate::serve(listener, config, shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("mcp-gate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM (Kubernetes, Docker) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
