//! The outbound connector shared by the proxy and the key fetcher: TCP with a connect timeout,
//! then TLS (rustls on aws-lc-rs) for https URLs.
//!
//! Roots come from the operating system, so private CAs of an in-house IdP work; when the system has
//! none (a distroless image without a CA bundle), the Mozilla roots compiled in are used instead.

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;

/// An HTTP(S) connector with a bounded connect time.
pub fn https_connector(connect_timeout: Duration) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder =
        match HttpsConnectorBuilder::new().with_provider_and_native_roots(provider.clone()) {
            Ok(b) => b,
            Err(_) => HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(provider)
                .expect("aws-lc-rs supports the default TLS versions"),
        };
    builder.https_or_http().enable_http1().wrap_connector(http)
}
