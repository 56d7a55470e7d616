//! Optional TLS termination (rustls), with the certificate re-read when its files change.
//!
//! cert-manager and Let's Encrypt clients renew by replacing the files (Kubernetes swaps a symlink);
//! the gate polls their modification times and, when they change and the new pair loads, swaps the
//! certificate for new handshakes. Connections already open keep theirs, so nothing is dropped. A
//! pair that fails to load is logged and the previous certificate stays in use. ALPN offers HTTP/2
//! and HTTP/1.1.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why a certificate/key pair could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS_CERT_FILE={path:?}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("TLS_KEY_FILE={path:?}: {reason}")]
    Key { path: PathBuf, reason: String },
}

/// Serves the current certificate to every handshake.
#[derive(Debug)]
struct CurrentCert(ArcSwap<CertifiedKey>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// The TLS side of the listener: an acceptor plus what is needed to reload its certificate.
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    current: Arc<CurrentCert>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

/// Reads a PEM certificate chain and private key into a signing-ready pair.
pub fn load_pair(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_err = |reason: String| TlsError::Cert {
        path: cert_path.to_path_buf(),
        reason,
    };
    let key_err = |reason: String| TlsError::Key {
        path: key_path.to_path_buf(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert_err("no PEM certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| key_err(e.to_string()))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| key_err(e.to_string()))?;
    let pair = CertifiedKey::new(certs, signing_key);
    pair.keys_match()
        .map_err(|e| key_err(format!("does not match the certificate: {e}")))?;
    Ok(pair)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Tls {
    /// Loads the pair now; an error here stops the gate at start.
    pub fn new(cert_path: &Path, key_path: &Path) -> Result<Tls, TlsError> {
        let pair = load_pair(cert_path, key_path)?;
        let current = Arc::new(CurrentCert(ArcSwap::from_pointee(pair)));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions")
        .with_no_client_auth()
        .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            current,
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
        })
    }

    pub fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    /// Polls the files every `every` and swaps in a changed pair; runs until `stop` resolves.
    pub async fn watch(
        self: Arc<Self>,
        every: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        let mut seen = (modified(&self.cert_path), modified(&self.key_path));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = &mut stop => return,
            }
            let now = (modified(&self.cert_path), modified(&self.key_path));
            if now == seen {
                continue;
            }
            match load_pair(&self.cert_path, &self.key_path) {
                Ok(pair) => {
                    self.current.0.store(Arc::new(pair));
                    seen = now;
                    tracing::info!(cert = %self.cert_path.display(), "reloaded the TLS certificate");
                }
                // A renewal may write the two files one after the other: try again next time.
                Err(e) => {
                    tracing::warn!(error = %e, "TLS certificate changed but cannot be loaded; keeping the previous one")
                }
            }
        }
    }
}
