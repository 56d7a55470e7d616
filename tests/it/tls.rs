//! TLS termination: handshake with ALPN (h2 and HTTP/1.1), and certificate reload without
//! dropping open connections. Certificates are generated here with rcgen.

use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use bytes::Bytes;
use http::{Request, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::{CertificateDer, ServerName};

struct Cert {
    der: CertificateDer<'static>,
    pem: String,
    key_pem: String,
}

fn new_cert() -> Cert {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    Cert {
        der: ck.cert.der().clone(),
        pem: ck.cert.pem(),
        key_pem: ck.signing_key.serialize_pem(),
    }
}

fn write(dir: &std::path::Path, cert: &Cert) {
    // Write to temporary names and rename, as cert-manager's symlink swap makes the change atomic.
    std::fs::write(dir.join("tls.crt.tmp"), &cert.pem).unwrap();
    std::fs::write(dir.join("tls.key.tmp"), &cert.key_pem).unwrap();
    std::fs::rename(dir.join("tls.key.tmp"), dir.join("tls.key")).unwrap();
    std::fs::rename(dir.join("tls.crt.tmp"), dir.join("tls.crt")).unwrap();
}

fn client_config(roots: &[&Cert], alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut store = rustls::RootCertStore::empty();
    for c in roots {
        store.add(c.der.clone()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// The certificate the gate presents to a new handshake.
async fn presented(addr: std::net::SocketAddr, roots: &[&Cert]) -> CertificateDer<'static> {
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(client_config(roots, &[b"http/1.1"])));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

#[tokio::test]
async fn tls_serves_h2_and_http1_and_reloads_the_certificate_without_dropping_connections() {
    let dir = std::env::temp_dir().join(format!("mcp-gate-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (first, second) = (new_cert(), new_cert());
    write(&dir, &first);

    let key = TestKey::ec("k1", "ES256");
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("https://localhost:{}/mcp", addr.port());
    let vars: std::collections::HashMap<String, String> = [
        ("UPSTREAM_URL", upstream.url()),
        ("RESOURCE_URI", resource.clone()),
        ("AUTHORIZATION_SERVER", idp.issuer.clone()),
        ("TLS_CERT_FILE", dir.join("tls.crt").display().to_string()),
        ("TLS_KEY_FILE", dir.join("tls.key").display().to_string()),
        ("TLS_RELOAD_INTERVAL", "100ms".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let (config, _) = mcp_gate::Config::from_vars(&vars).unwrap();
    let (_stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(mcp_gate::serve(listener, config, async {
        let _ = stop_rx.await;
    }));

    let base = format!("https://localhost:{}", addr.port());
    // hyper-rustls sets ALPN from the versions enabled.
    let https = |h2: bool| {
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(client_config(&[&first, &second], &[]))
            .https_only();
        let connector = if h2 {
            builder.enable_all_versions().build()
        } else {
            builder.enable_http1().build()
        };
        Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector)
    };
    let token = key.token(&claims(&idp.issuer, &resource));
    let auth = bearer(&token);

    // Wait until ready, over TLS.
    let h2 = https(true);
    let mut ready = false;
    for _ in 0..100 {
        let r = h2
            .request(
                Request::get(format!("{base}/readyz"))
                    .body(Empty::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        if r.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ready);

    let r = h2
        .request(
            Request::post(format!("{base}/mcp"))
                .header("authorization", &auth)
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.version(), Version::HTTP_2, "ALPN offers h2");
    assert_eq!(r.status(), 200);
    assert_eq!(upstream.seen()[0].headers["x-forwarded-proto"], "https");

    let h1 = https(false);
    let r = h1
        .request(
            Request::post(format!("{base}/mcp"))
                .header("authorization", &auth)
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.version(), Version::HTTP_11);
    assert_eq!(r.status(), 200);

    // A stream opened under the first certificate…
    let mut stream = h1
        .request(
            Request::get(format!("{base}/sse"))
                .header("authorization", &auth)
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let first_event = tokio::time::timeout(Duration::from_secs(5), stream.body_mut().frame())
        .await
        .unwrap();
    assert!(first_event.is_some());
    assert_eq!(presented(addr, &[&first, &second]).await, first.der);

    // …survives the renewal, while new handshakes get the new certificate.
    write(&dir, &second);
    let mut renewed = false;
    for _ in 0..100 {
        if presented(addr, &[&first, &second]).await == second.der {
            renewed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        renewed,
        "the new certificate is served after the files change"
    );
    upstream.release();
    let next = tokio::time::timeout(Duration::from_secs(5), stream.body_mut().frame())
        .await
        .expect("the open stream still delivers")
        .unwrap()
        .unwrap();
    assert_eq!(next.into_data().unwrap(), "data: event 2\n\n");

    // A broken renewal keeps the current certificate.
    std::fs::write(dir.join("tls.crt"), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(presented(addr, &[&first, &second]).await, second.der);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tls_settings_must_come_in_pairs_and_be_readable() {
    let base = [
        ("UPSTREAM_URL", "http://127.0.0.1:3000"),
        ("RESOURCE_URI", "https://mcp.example.com/mcp"),
        ("AUTHORIZATION_SERVER", "https://idp.example.com"),
    ];
    let run = |extra: &[(&str, &str)]| {
        let vars: std::collections::HashMap<String, String> = base
            .iter()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        mcp_gate::Config::from_vars(&vars)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    assert!(run(&[("TLS_CERT_FILE", "/etc/hostname")]).starts_with("TLS_KEY_FILE"));
    assert!(run(&[("TLS_KEY_FILE", "/etc/hostname")]).starts_with("TLS_CERT_FILE"));
    assert!(run(&[
        ("TLS_CERT_FILE", "/nonexistent.pem"),
        ("TLS_KEY_FILE", "/etc/hostname")
    ])
    .starts_with("TLS_CERT_FILE="));
}
