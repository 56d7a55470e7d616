//! A scripted JWKS endpoint for the key cache's tests: it answers what the test last set, after a
//! fixed latency on tokio's clock, and counts the fetches, so the tests can assert how many requests
//! the cache made of the IdP without a socket or a real sleep.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use crate::auth::fetch::{DocumentSource, FetchError, Fetched};

/// How long the scripted IdP takes to answer, in tokio time.
pub(super) const LATENCY: Duration = Duration::from_millis(50);

/// A JWKS endpoint whose answer the test sets; `None` answers HTTP 500.
#[derive(Default)]
pub(super) struct Script {
    answer: std::sync::Mutex<Option<(String, Option<Duration>)>>,
    fetches: AtomicUsize,
}

impl Script {
    pub(super) fn serve(&self, keys: &[String]) {
        let doc = format!(r#"{{"keys":[{}]}}"#, keys.join(","));
        *self.answer.lock().unwrap() = Some((doc, None));
    }
    pub(super) fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl DocumentSource for Arc<Script> {
    async fn get(&self, _url: &str) -> Result<Fetched, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(LATENCY).await;
        let answer = self.answer.lock().unwrap().clone();
        match answer {
            Some((doc, max_age)) => Ok(Fetched {
                body: doc.into(),
                max_age,
            }),
            None => Err(FetchError::Status(500)),
        }
    }
}

/// An RSA JWK; the modulus is well-formed, which is all loading checks.
pub(super) fn rsa(kid: &str, alg: Option<&str>) -> String {
    let mut n = vec![0xC5u8; 256];
    n[255] |= 1;
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&n);
    let alg = alg.map_or(String::new(), |a| format!(r#","alg":"{a}""#));
    format!(r#"{{"kty":"RSA","kid":"{kid}","n":"{n}","e":"AQAB"{alg}}}"#)
}
