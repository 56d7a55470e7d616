//! `OTEL_*` and `TRACE_RECORD_SUBJECT`: whether traces are exported, where, and how they are sampled.
//!
//! The names and value formats are the OpenTelemetry SDK environment variables' ("Environment
//! Variable Specification" and "OTLP Exporter Configuration" of the OpenTelemetry specification),
//! read here from the same map as every other setting. Tracing is off unless an OTLP endpoint is
//! set; a value the gate cannot honour (gRPC, another exporter, a remote sampler) stops the start
//! with the variable named, rather than being silently replaced by something else.

use std::time::Duration;

use crate::telemetry::{Root, Sampling, Settings};

use super::vars::{Var, Vars};
use super::{invalid, ConfigError};

/// The tracing settings, or `None` when traces are off.
pub(super) fn settings(v: &Vars) -> Result<Option<Settings>, ConfigError> {
    let endpoint = match (
        v.get(Var::OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
        v.get(Var::OTEL_EXPORTER_OTLP_ENDPOINT),
    ) {
        (Some(url), _) => Some((Var::OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, url.to_string())),
        (None, Some(base)) => Some((
            Var::OTEL_EXPORTER_OTLP_ENDPOINT,
            format!("{}/v1/traces", base.trim_end_matches('/')),
        )),
        (None, None) => None,
    };
    // Checked even when tracing is off, so a typo is found before someone turns it on.
    let exporter = v.required(Var::OTEL_TRACES_EXPORTER, "otlp or none")?;
    let export = match exporter.to_ascii_lowercase().as_str() {
        "otlp" => true,
        "none" => false,
        _ => {
            return Err(invalid(
                Var::OTEL_TRACES_EXPORTER,
                exporter,
                "otlp or none (the gate exports traces with OTLP only)",
            ))
        }
    };
    for var in [
        Var::OTEL_EXPORTER_OTLP_PROTOCOL,
        Var::OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    ] {
        if let Some(protocol) = v.get(var) {
            if protocol != "http/protobuf" {
                return Err(invalid(
                    var,
                    protocol,
                    "http/protobuf (gRPC and http/json are not built in)",
                ));
            }
        }
    }
    let sampling = sampling(v)?;
    let Some((endpoint_var, endpoint)) = endpoint else {
        return Ok(None);
    };
    if v.bool(Var::OTEL_SDK_DISABLED)? || !export {
        return Ok(None);
    }
    match url::Url::parse(&endpoint) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        _ => {
            return Err(invalid(
                endpoint_var,
                &endpoint,
                "an http:// or https:// URL, e.g. http://otel-collector:4318",
            ))
        }
    }
    Ok(Some(Settings {
        endpoint,
        headers: pairs(v, Var::OTEL_EXPORTER_OTLP_HEADERS, true)?,
        timeout: millis(v, Var::OTEL_EXPORTER_OTLP_TIMEOUT)?,
        service_name: v
            .required(Var::OTEL_SERVICE_NAME, "a service name")?
            .to_string(),
        resource: pairs(v, Var::OTEL_RESOURCE_ATTRIBUTES, false)?,
        sampling,
        schedule_delay: millis(v, Var::OTEL_BSP_SCHEDULE_DELAY)?,
        max_queue: count(v, Var::OTEL_BSP_MAX_QUEUE_SIZE)?,
        max_batch: count(v, Var::OTEL_BSP_MAX_EXPORT_BATCH_SIZE)?,
        record_subject: v.bool(Var::TRACE_RECORD_SUBJECT)?,
    }))
}

fn sampling(v: &Vars) -> Result<Sampling, ConfigError> {
    const VAR: Var = Var::OTEL_TRACES_SAMPLER;
    let raw = v.required(VAR, "a sampler name")?;
    let (parent_based, root) = match raw {
        "always_on" => (false, Root::AlwaysOn),
        "always_off" => (false, Root::AlwaysOff),
        "traceidratio" => (false, Root::Ratio(ratio(v)?)),
        "parentbased_always_on" => (true, Root::AlwaysOn),
        "parentbased_always_off" => (true, Root::AlwaysOff),
        "parentbased_traceidratio" => (true, Root::Ratio(ratio(v)?)),
        _ => {
            return Err(invalid(
                VAR,
                raw,
                "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio",
            ))
        }
    };
    Ok(Sampling { parent_based, root })
}

fn ratio(v: &Vars) -> Result<f64, ConfigError> {
    const VAR: Var = Var::OTEL_TRACES_SAMPLER_ARG;
    let Some(raw) = v.get(VAR) else {
        return Ok(1.0);
    };
    match raw.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(invalid(VAR, raw, "a ratio from 0 to 1, e.g. 0.25")),
    }
}

/// An integer number of milliseconds, as the OpenTelemetry variables give durations.
fn millis(v: &Vars, var: Var) -> Result<Duration, ConfigError> {
    let raw = v.required(var, "milliseconds")?;
    match raw.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(invalid(var, raw, "a whole number of milliseconds above 0")),
    }
}

fn count(v: &Vars, var: Var) -> Result<usize, ConfigError> {
    let raw = v.required(var, "a count")?;
    match raw.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid(var, raw, "a whole number above 0")),
    }
}

/// `key1=value1,key2=value2` with percent-encoded values (the W3C Baggage format the specification
/// uses for headers and resource attributes). A bad header list is reported without its values:
/// they are usually credentials.
fn pairs(v: &Vars, var: Var, secret: bool) -> Result<Vec<(String, String)>, ConfigError> {
    let Some(raw) = v.get(var) else {
        return Ok(Vec::new());
    };
    let shown = if secret { "<not shown>" } else { raw };
    let mut out = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((key, value)) = item.split_once('=') else {
            return Err(invalid(var, shown, "key=value pairs separated by commas"));
        };
        let value = percent_encoding::percent_decode_str(value.trim())
            .decode_utf8()
            .map_err(|_| invalid(var, shown, "percent-encoded UTF-8 values"))?;
        let key = key.trim();
        let valid_key = !key.is_empty() && http::HeaderName::from_bytes(key.as_bytes()).is_ok();
        let valid_value = !secret || http::HeaderValue::from_str(&value).is_ok();
        if !valid_key || !valid_value {
            return Err(invalid(var, shown, "key=value pairs separated by commas"));
        }
        out.push((key.to_string(), value.into_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Option<Settings>, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        settings(&Vars::new(&map))
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        match parse(pairs) {
            Err(e) => e.to_string(),
            Ok(s) => panic!("accepted {pairs:?}: {s:?}"),
        }
    }

    #[test]
    fn tracing_is_off_without_an_endpoint() {
        assert!(parse(&[]).unwrap().is_none());
        assert!(parse(&[("OTEL_SERVICE_NAME", "x")]).unwrap().is_none());
    }

    #[test]
    fn the_base_endpoint_gets_the_traces_path_and_the_traces_endpoint_is_used_as_is() {
        let s = parse(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(s.endpoint, "http://c:4318/v1/traces");
        let s = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://t.example/otlp",
            ),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.endpoint, "https://t.example/otlp");
    }

    #[test]
    fn defaults_follow_the_specification() {
        let s = parse(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])
            .unwrap()
            .unwrap();
        assert_eq!(s.service_name, "mcp-gate");
        assert_eq!(
            s.sampling,
            Sampling {
                parent_based: true,
                root: Root::AlwaysOn
            }
        );
        assert_eq!(s.schedule_delay, Duration::from_secs(5));
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!((s.max_queue, s.max_batch), (2048, 512));
        assert!(!s.record_subject);
    }

    #[test]
    fn sdk_disabled_or_exporter_none_turn_tracing_off() {
        let on = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        assert!(parse(&[on, ("OTEL_SDK_DISABLED", "true")])
            .unwrap()
            .is_none());
        assert!(parse(&[on, ("OTEL_TRACES_EXPORTER", "none")])
            .unwrap()
            .is_none());
    }

    #[test]
    fn unsupported_protocols_exporters_and_samplers_are_refused_by_name() {
        let on = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
            ("OTEL_TRACES_EXPORTER", "zipkin"),
            ("OTEL_TRACES_SAMPLER", "jaeger_remote"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
            ("OTEL_BSP_SCHEDULE_DELAY", "5s"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
        ] {
            let mut vars = vec![on, (var, value)];
            if var == "OTEL_TRACES_SAMPLER_ARG" {
                vars.push(("OTEL_TRACES_SAMPLER", "traceidratio"));
            }
            let message = error(&vars);
            assert!(message.starts_with(var), "{message}");
        }
        // A protocol the gate cannot speak is refused even while tracing is off.
        assert!(error(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])
            .starts_with("OTEL_EXPORTER_OTLP_PROTOCOL"));
    }

    #[test]
    fn an_endpoint_must_be_an_http_url() {
        let message = error(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]);
        assert!(
            message.starts_with("OTEL_EXPORTER_OTLP_ENDPOINT"),
            "{message}"
        );
    }

    #[test]
    fn headers_are_percent_decoded_and_never_repeated_in_errors() {
        let s = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key=s%3Dcret, x-tenant = a b",
            ),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            s.headers,
            vec![
                ("api-key".to_string(), "s=cret".to_string()),
                ("x-tenant".to_string(), "a b".to_string())
            ]
        );
        let message = error(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "Authorization Bearer hunter2"),
        ]);
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn ratio_samplers_read_their_argument() {
        let s = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.sampling.root, Root::Ratio(0.25));
    }
}
