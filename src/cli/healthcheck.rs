//! `mcp-gate healthcheck`: asks a running gate's readiness path and exits 0 when it answers 200, so
//! container images need no curl (Docker `HEALTHCHECK`, Kubernetes `exec` probes).

use std::net::SocketAddr;
use std::time::Duration;

use std::process::ExitCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The address to probe for a gate listening on `listen`: a wildcard address is reached on loopback.
pub fn probe_addr(listen: SocketAddr) -> SocketAddr {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// GETs `path` on `addr` and returns the HTTP status, within `timeout`.
pub async fn probe(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<u16> {
    let work = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: mcp-gate-healthcheck\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut head = [0u8; 64];
        let mut read = 0;
        while read < 12 {
            let n = stream.read(&mut head[read..]).await?;
            if n == 0 {
                break;
            }
            read += n;
        }
        let line = String::from_utf8_lossy(&head[..read]);
        line.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response")
            })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))?
}

/// Probes the local gate's readiness path; only LISTEN_ADDR and READY_PATH matter here.
pub(super) fn run(matches: &clap::ArgMatches) -> ExitCode {
    let listen = matches
        .get_one::<String>("LISTEN_ADDR")
        .map(String::as_str)
        .unwrap_or("0.0.0.0:8080");
    let path = matches
        .get_one::<String>("READY_PATH")
        .map(String::as_str)
        .unwrap_or("/readyz");
    let Ok(listen) = listen.parse() else {
        eprintln!("mcp-gate healthcheck: LISTEN_ADDR={listen:?} is not an address:port");
        return ExitCode::from(2);
    };
    let addr = probe_addr(listen);
    let result = super::client_runtime()
        .map(|rt| rt.block_on(probe(addr, path, std::time::Duration::from_secs(3))));
    match result {
        Ok(Ok(200)) => ExitCode::SUCCESS,
        Ok(Ok(status)) => {
            eprintln!("mcp-gate healthcheck: {addr}{path} answered {status}");
            ExitCode::FAILURE
        }
        Ok(Err(e)) | Err(e) => {
            eprintln!("mcp-gate healthcheck: {addr}{path}: {e}");
            ExitCode::FAILURE
        }
    }
}
