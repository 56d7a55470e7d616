//! How the gate presents itself: TLS files, health paths, browser origins and logging.
//!
//! CORS origins are exact serialised origins (RFC 6454 §6.1), compared byte for byte with `Origin`.

use super::vars::{Var, Vars};
use super::{invalid, ConfigError};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// The certificate and key files of a TLS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// `TLS_CERT_FILE` and `TLS_KEY_FILE`: both or neither, and both readable now (not at first handshake).
pub(super) fn tls_files(v: &Vars) -> Result<Option<TlsFiles>, ConfigError> {
    let readable = |var: Var, path: &str| -> Result<std::path::PathBuf, ConfigError> {
        std::fs::File::open(path)
            .map(|_| path.into())
            .map_err(|e| invalid(var, path, format!("a readable PEM file ({e})")))
    };
    match (v.get(Var::TLS_CERT_FILE), v.get(Var::TLS_KEY_FILE)) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: readable(Var::TLS_CERT_FILE, cert)?,
            key: readable(Var::TLS_KEY_FILE, key)?,
        })),
        (Some(_), None) => Err(ConfigError::Missing {
            var: Var::TLS_KEY_FILE,
            expected: "the private key for TLS_CERT_FILE (set both or neither)".into(),
        }),
        (None, Some(_)) => Err(ConfigError::Missing {
            var: Var::TLS_CERT_FILE,
            expected: "the certificate chain for TLS_KEY_FILE (set both or neither)".into(),
        }),
    }
}

/// An absolute path without query or fragment, such as `/healthz`.
pub(super) fn path(v: &Vars, var: Var) -> Result<String, ConfigError> {
    let p = v.required(var, "a path such as /healthz")?;
    if !p.starts_with('/') || p.contains(['?', '#']) {
        return Err(invalid(var, p, "an absolute path such as /healthz"));
    }
    Ok(p.to_string())
}

/// `CORS_ALLOWED_ORIGINS`: exact origins, scheme://host[:port] with no path.
pub(super) fn cors_allowed_origins(v: &Vars) -> Result<Vec<String>, ConfigError> {
    let mut origins = Vec::new();
    for origin in v.list(Var::CORS_ALLOWED_ORIGINS) {
        let parsed = url::Url::parse(&origin).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https") && u.path() == "/" && !origin.ends_with('/')
        });
        if parsed.is_none() {
            return Err(invalid(
                Var::CORS_ALLOWED_ORIGINS,
                &origin,
                "exact origins such as https://app.example.com (scheme://host[:port], no path)",
            ));
        }
        origins.push(origin);
    }
    Ok(origins)
}

pub(super) fn log_format(v: &Vars) -> Result<LogFormat, ConfigError> {
    match v.required(Var::LOG_FORMAT, "json or pretty")? {
        "json" => Ok(LogFormat::Json),
        "pretty" => Ok(LogFormat::Pretty),
        other => Err(invalid(Var::LOG_FORMAT, other, "json or pretty")),
    }
}

pub(super) fn log_level(v: &Vars) -> Result<String, ConfigError> {
    let level = v.required(Var::LOG_LEVEL, "a level")?.to_ascii_lowercase();
    if !matches!(
        level.as_str(),
        "error" | "warn" | "info" | "debug" | "trace"
    ) {
        return Err(invalid(
            Var::LOG_LEVEL,
            &level,
            "error, warn, info, debug or trace",
        ));
    }
    Ok(level)
}

/// `RESOURCE_DOCUMENTATION`: an absolute URL, published as is.
pub(super) fn resource_documentation(v: &Vars) -> Result<Option<String>, ConfigError> {
    let Some(doc) = v.get(Var::RESOURCE_DOCUMENTATION) else {
        return Ok(None);
    };
    url::Url::parse(doc)
        .map_err(|_| invalid(Var::RESOURCE_DOCUMENTATION, doc, "an absolute URL"))?;
    Ok(Some(doc.to_string()))
}

/// `CLAIM_HEADERS` and `IDENTITY_HEADERS_STRIP` (`none` strips only what `CLAIM_HEADERS` names).
pub(super) fn identity_headers(
    v: &Vars,
) -> Result<crate::http::identity::IdentityHeaders, ConfigError> {
    use crate::http::identity::IdentityHeaders;
    let claims = v.get(Var::CLAIM_HEADERS);
    let strip = match v.get(Var::IDENTITY_HEADERS_STRIP) {
        Some(s) if s.eq_ignore_ascii_case("none") => "",
        Some(s) => s,
        None => "",
    };
    // Each setting is checked alone first, so the error names the one that is wrong.
    IdentityHeaders::parse(claims, "")
        .map_err(|e| invalid(Var::CLAIM_HEADERS, &e.item, e.expected))?;
    IdentityHeaders::parse(None, strip)
        .map_err(|e| invalid(Var::IDENTITY_HEADERS_STRIP, &e.item, e.expected))?;
    IdentityHeaders::parse(claims, strip)
        .map_err(|e| invalid(Var::CLAIM_HEADERS, &e.item, e.expected))
}
