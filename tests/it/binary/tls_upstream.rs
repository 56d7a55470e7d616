//! An https `UPSTREAM_URL`: the gate's upstream connections speak TLS to it, verified against the
//! system's roots (here `SSL_CERT_FILE`, which only the spawned binary's environment can set), and
//! are reused across requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use super::*;

/// An HTTPS upstream for `localhost` answering 200 "over tls"; counts the connections it accepts.
async fn tls_upstream(dir: &std::path::Path) -> (u16, Arc<AtomicUsize>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("ca.pem"), ck.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(
                        "over tls",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, accepted)
}

#[tokio::test]
async fn an_https_upstream_is_reached_over_verified_tls_and_its_connection_reused() {
    let dir = std::env::temp_dir().join(format!("mcp-gate-tls-upstream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (upstream_port, accepted) = tls_upstream(&dir).await;
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let port = free_addr().port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let mut child = Command::new(BIN)
        .env_clear()
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("UPSTREAM_URL", format!("https://localhost:{upstream_port}"))
        .env("SSL_CERT_FILE", dir.join("ca.pem"))
        .env("RESOURCE_URI", &resource)
        .env("AUTHORIZATION_SERVER", &idp.issuer)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready_on(port).await;
    let auth = bearer(&key.token(&claims(&idp.issuer, &resource)));
    for i in 0..3 {
        let a = post(&resource, &[("authorization", &auth)], "{}").await;
        assert_eq!(a.status, 200, "request {i}");
        assert_eq!(a.body, "over tls");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one TLS connection served all three"
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
