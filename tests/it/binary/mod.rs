//! The `mcp-gate` binary as an operator runs it: configuration errors, `--help`, the JSON access log,
//! and SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-gate");

fn run_with_env(env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn bad_configuration_exits_2_with_one_line_naming_the_variable() {
    let base = [
        ("UPSTREAM_URL", "http://127.0.0.1:3000"),
        ("RESOURCE_URI", "https://mcp.example.com/mcp"),
        ("AUTHORIZATION_SERVER", "https://idp.example.com"),
    ];
    let cases: &[(&str, &str)] = &[
        ("UPSTREAM_URL", ""),
        ("CLOCK_SKEW", "soon"),
        ("RESOURCE_URI", "https://mcp.example.com/mcp/"),
        ("LISTEN_ADDR", "nowhere"),
        ("ALLOWED_ALGORITHMS", "HS256"),
    ];
    for (var, value) in cases {
        let mut env: Vec<(&str, &str)> = base.iter().filter(|(k, _)| k != var).copied().collect();
        if !value.is_empty() {
            env.push((var, value));
        }
        let out = run_with_env(&env);
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(var), "{var}: {stderr}");
    }
}

#[test]
fn flags_mirror_the_environment_and_help_shows_defaults() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for s in mcp_gate::config::SETTINGS {
        let flag = format!("--{}", s.var.to_ascii_lowercase().replace('_', "-"));
        assert!(help.contains(&flag), "{flag}");
        assert!(help.contains(&format!("env: {}", s.var)), "{}", s.var);
        if let Some(d) = s.default {
            assert!(
                help.contains(&format!("default: {d}")),
                "{} default {d}",
                s.var
            );
        }
    }
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    // A flag wins over the environment.
    let out = Command::new(BIN)
        .env_clear()
        .env("UPSTREAM_URL", "http://127.0.0.1:3000")
        .env("RESOURCE_URI", "https://mcp.example.com/mcp")
        .env("AUTHORIZATION_SERVER", "https://idp.example.com")
        .env("CLOCK_SKEW", "30s")
        .args(["--clock-skew", "bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CLOCK_SKEW=\"bogus\""));
}

/// Sends SIGTERM via the `kill` command (no libc dependency needed for one signal).
fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The image runs the gate as uid/gid 65532 (distroless `nonroot`) on a read-only root filesystem:
/// the binary must start, serve and pass its own healthcheck as that user, from a directory it cannot
/// write to. Needs root to switch users (as in CI); elsewhere it says so and checks nothing.
#[tokio::test]
async fn runs_and_serves_as_the_unprivileged_image_user() {
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("not root: cannot switch to uid 65532 here; nothing checked");
        return;
    }
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let port = free_addr().port();
    let as_nonroot = |args: &[&str]| {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=65532",
            "--regid=65532",
            "--clear-groups",
            "--",
            BIN,
        ])
        .args(args);
        cmd.env_clear()
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("UPSTREAM_URL", upstream.url())
            .env("RESOURCE_URI", format!("http://127.0.0.1:{port}/mcp"))
            .env("AUTHORIZATION_SERVER", &idp.issuer)
            .current_dir("/");
        cmd
    };
    let child = as_nonroot(&[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut healthy = false;
    for _ in 0..100 {
        if as_nonroot(&["healthcheck"]).status().unwrap().success() {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = key.token(&claims(
        &idp.issuer,
        &format!("http://127.0.0.1:{port}/mcp"),
    ));
    let status = if healthy {
        post(
            &format!("http://127.0.0.1:{port}/mcp"),
            &[("authorization", &bearer(&token))],
            "",
        )
        .await
        .status
    } else {
        0
    };
    sigterm(child.id());
    let exit = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        healthy,
        "not ready as uid 65532: {}",
        String::from_utf8_lossy(&exit.stderr)
    );
    assert_eq!(status, 200);
    assert_eq!(exit.status.code(), Some(0));
}

#[test]
fn a_bad_policy_exits_2_naming_policy_file_the_rule_and_why() {
    let path =
        std::env::temp_dir().join(format!("mcp-gate-bad-policy-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "[[rule]]\nmethod = \"tools/call\"\nname = \"a\"\n\n[[rule]]\nmethod = \"tools/list\"\nname = \"x\"\n",
    )
    .unwrap();
    let out = run_with_env(&[
        ("UPSTREAM_URL", "http://127.0.0.1:3000"),
        ("RESOURCE_URI", "https://mcp.example.com/mcp"),
        ("AUTHORIZATION_SERVER", "https://idp.example.com"),
        ("POLICY_FILE", path.to_str().unwrap()),
    ]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("POLICY_FILE rule 2 (line 5)"), "{stderr}");
    assert!(stderr.contains("tools/list has no name"), "{stderr}");
}

mod logs;
mod tls_upstream;
