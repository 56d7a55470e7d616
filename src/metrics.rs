//! Prometheus metrics, served in the text format on a separate listener (`METRICS_ADDR`).
//!
//! Label values come from closed sets only — status codes, outcomes, refusal reasons, fetch results —
//! never paths, subjects or tokens, so the number of series is bounded whatever clients send.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::auth::unix_now;

/// How a request was decided.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Outcome {
    /// Metadata, health and preflight answers (no token involved).
    Public,
    /// Authenticated and proxied.
    Allowed,
    /// Refused by the gate.
    Refused,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Public => "public",
            Outcome::Allowed => "allowed",
            Outcome::Refused => "refused",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    status: u16,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RateLimitLabels {
    /// `ip` or `subject`.
    level: &'static str,
    /// `allowed`, `limited`, or `unavailable` (Redis down with `RATE_LIMIT_REDIS_FAILURE=closed`).
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    /// One of the configured issuers (a closed set).
    issuer: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuerLabels {
    issuer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct McpLabels {
    /// A known MCP method or `other` (`policy::audit::method_label`).
    method: &'static str,
    /// A name pattern from the policy or `other` (`policy::audit::name_label`): bounded by the
    /// configuration, never taken from the request.
    name: String,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Every metric of one gate.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    refusals: Family<ReasonLabels, Counter>,
    request_duration: Family<OutcomeLabels, Histogram>,
    upstream_duration: Histogram,
    open_streams: Gauge,
    jwks_fetches: Family<FetchLabels, Counter>,
    signing_keys: Family<IssuerLabels, Gauge>,
    key_set_age: Family<IssuerLabels, Gauge<f64, AtomicU64>>,
    /// Per issuer, Unix seconds of the last key-set load (0 = never); an age at scrape time. Written
    /// once per fetch, so a plain mutex costs nothing on the request path.
    keys_loaded_at: Mutex<Vec<(String, u64)>>,
    cache_hits: Counter,
    cache_misses: Counter,
    mcp_requests: Family<McpLabels, Counter>,
    policy_reloads: Family<ResultLabels, Counter>,
    rate_limit_decisions: Family<RateLimitLabels, Counter>,
    rate_limit_redis_duration: Histogram,
    rate_limit_redis_failures: Counter,
    dpop_replay_store_failures: Counter,
    introspection_duration: Histogram,
    decisions: Family<PathLabels, Counter>,
    token_exchange_duration: Histogram,
    token_exchanges: Family<ResultLabels, Counter>,
    trace_spans_exported: Counter,
    trace_spans_dropped: Family<ReasonLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabels {
    path: &'static str,
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~13 s: the gate's own work is sub-millisecond, an upstream may take seconds.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mcp_gate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by status and authentication outcome",
            requests.clone(),
        );
        let refusals = Family::<ReasonLabels, Counter>::default();
        registry.register("refusals", "Refused requests by reason", refusals.clone());
        let request_duration = Family::<OutcomeLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "request_duration_seconds",
            "Time from request to response headers",
            request_duration.clone(),
        );
        let upstream_duration = latency_histogram();
        registry.register(
            "upstream_duration_seconds",
            "Time the upstream took to send response headers",
            upstream_duration.clone(),
        );
        let open_streams = Gauge::default();
        registry.register(
            "open_streams",
            "Proxied responses still streaming",
            open_streams.clone(),
        );
        let jwks_fetches = Family::<FetchLabels, Counter>::default();
        registry.register(
            "jwks_fetches",
            "JWKS fetches by issuer and result",
            jwks_fetches.clone(),
        );
        let signing_keys = Family::<IssuerLabels, Gauge>::default();
        registry.register(
            "signing_keys",
            "Usable signing keys in each issuer's current key set",
            signing_keys.clone(),
        );
        let key_set_age = Family::<IssuerLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "key_set_age_seconds",
            "Seconds since each issuer's key set was last loaded or confirmed (-1 before the first load)",
            key_set_age.clone(),
        );
        let cache_hits = Counter::default();
        registry.register(
            "token_cache_hits",
            "Tokens decided from the verified-token cache",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        registry.register(
            "token_cache_misses",
            "Tokens checked in full",
            cache_misses.clone(),
        );
        let mcp_requests = Family::<McpLabels, Counter>::default();
        registry.register(
            "mcp_requests",
            "MCP requests the authorization rules inspected, by method, rule name pattern and decision",
            mcp_requests.clone(),
        );
        let policy_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "policy_reloads",
            "Reloads of POLICY_FILE by result (an error keeps the previous rules)",
            policy_reloads.clone(),
        );
        let rate_limit_decisions = Family::<RateLimitLabels, Counter>::default();
        registry.register(
            "rate_limit_decisions",
            "Rate-limit decisions by level (ip, subject) and decision",
            rate_limit_decisions.clone(),
        );
        // 50 µs … ~100 ms: a loopback or same-zone Redis answers in well under a millisecond.
        let rate_limit_redis_duration = Histogram::new(exponential_buckets(0.00005, 2.0, 12));
        registry.register(
            "rate_limit_redis_duration_seconds",
            "Round-trip time of a rate-limit decision in Redis",
            rate_limit_redis_duration.clone(),
        );
        let rate_limit_redis_failures = Counter::default();
        registry.register(
            "rate_limit_redis_failures",
            "Rate-limit decisions Redis did not answer in time (RATE_LIMIT_REDIS_FAILURE applied)",
            rate_limit_redis_failures.clone(),
        );
        let dpop_replay_store_failures = Counter::default();
        registry.register(
            "dpop_replay_store_failures",
            "DPoP replay checks the shared store (Redis) did not answer in time (DPOP_REPLAY_REDIS_FAILURE applied)",
            dpop_replay_store_failures.clone(),
        );
        let introspection_duration = latency_histogram();
        registry.register(
            "introspection_duration_seconds",
            "Time each token introspection call took (RFC 7662)",
            introspection_duration.clone(),
        );
        let decisions = Family::<PathLabels, Counter>::default();
        registry.register(
            "token_decisions",
            "Token decisions by the path that made them: jwt, introspection or cache",
            decisions.clone(),
        );
        let token_exchange_duration = latency_histogram();
        registry.register(
            "token_exchange_duration_seconds",
            "Time each token exchange call took (RFC 8693)",
            token_exchange_duration.clone(),
        );
        let token_exchanges = Family::<ResultLabels, Counter>::default();
        registry.register(
            "token_exchanges",
            "Upstream tokens by result: hit (cached), miss (exchanged now) or failure",
            token_exchanges.clone(),
        );
        let trace_spans_exported = Counter::default();
        registry.register(
            "trace_spans_exported",
            "Trace spans the OTLP collector accepted",
            trace_spans_exported.clone(),
        );
        let trace_spans_dropped = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "trace_spans_dropped",
            "Trace spans lost: queue_full (OTEL_BSP_MAX_QUEUE_SIZE reached) or export_failed",
            trace_spans_dropped.clone(),
        );
        Metrics {
            token_exchange_duration,
            token_exchanges,
            trace_spans_exported,
            trace_spans_dropped,
            introspection_duration,
            decisions,
            registry,
            mcp_requests,
            policy_reloads,
            requests,
            refusals,
            request_duration,
            upstream_duration,
            open_streams,
            jwks_fetches,
            signing_keys,
            key_set_age,
            keys_loaded_at: Mutex::new(Vec::new()),
            cache_hits,
            cache_misses,
            rate_limit_decisions,
            rate_limit_redis_duration,
            rate_limit_redis_failures,
            dpop_replay_store_failures,
        }
    }

    /// Records a response's head.
    pub fn request(&self, status: u16, outcome: Outcome, elapsed: Duration) {
        let outcome = outcome.as_str();
        self.requests
            .get_or_create(&RequestLabels { status, outcome })
            .inc();
        self.request_duration
            .get_or_create(&OutcomeLabels { outcome })
            .observe(elapsed.as_secs_f64());
    }

    pub fn refusal(&self, reason: &'static str) {
        self.refusals.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn upstream(&self, elapsed: Duration) {
        self.upstream_duration.observe(elapsed.as_secs_f64());
    }

    pub fn stream_opened(&self) {
        self.open_streams.inc();
    }

    pub fn stream_closed(&self) {
        self.open_streams.dec();
    }

    /// An issuer's key cache exists: its key-set age reads -1 until the first load.
    pub fn issuer_configured(&self, issuer: &str) {
        let mut loaded = self
            .keys_loaded_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !loaded.iter().any(|(i, _)| i == issuer) {
            loaded.push((issuer.to_string(), 0));
        }
    }

    /// A JWKS fetch for `issuer` finished; `keys` is the size of the key set in use afterwards.
    pub fn jwks_fetch(&self, issuer: &str, ok: bool, keys: Option<usize>) {
        let result = if ok { "ok" } else { "error" };
        self.jwks_fetches
            .get_or_create(&FetchLabels {
                issuer: issuer.to_string(),
                result,
            })
            .inc();
        if ok {
            let mut loaded = self
                .keys_loaded_at
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match loaded.iter_mut().find(|(i, _)| i == issuer) {
                Some((_, at)) => *at = unix_now(),
                None => loaded.push((issuer.to_string(), unix_now())),
            }
        }
        if let Some(n) = keys {
            self.signing_keys
                .get_or_create(&IssuerLabels {
                    issuer: issuer.to_string(),
                })
                .set(n as i64);
        }
    }

    /// One MCP request the authorization rules inspected, with bounded labels.
    pub fn mcp_request(&self, method: &'static str, name: String, decision: &'static str) {
        self.mcp_requests
            .get_or_create(&McpLabels {
                method,
                name,
                decision,
            })
            .inc();
    }

    /// A new version of the policy file was loaded (`ok`) or refused.
    pub fn policy_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.policy_reloads
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    pub fn cache_hit(&self) {
        self.cache_hits.inc();
    }

    pub fn cache_miss(&self) {
        self.cache_misses.inc();
    }

    /// One rate-limit decision at `level` (`ip`, `subject`).
    pub fn rate_limit_decision(&self, level: &'static str, decision: &'static str) {
        self.rate_limit_decisions
            .get_or_create(&RateLimitLabels { level, decision })
            .inc();
    }

    /// A decision Redis answered, and how long it took.
    pub fn rate_limit_redis(&self, elapsed: Duration) {
        self.rate_limit_redis_duration
            .observe(elapsed.as_secs_f64());
    }

    /// A decision Redis did not answer in time.
    pub fn rate_limit_redis_failure(&self) {
        self.rate_limit_redis_failures.inc();
    }

    /// A DPoP replay check the shared store did not answer in time.
    pub fn dpop_replay_store_failure(&self) {
        self.dpop_replay_store_failures.inc();
    }

    /// An introspection call, and how long it took.
    pub fn introspection(&self, elapsed: Duration) {
        self.introspection_duration.observe(elapsed.as_secs_f64());
    }

    /// A token exchange call, and how long it took.
    pub fn token_exchange_call(&self, elapsed: Duration) {
        self.token_exchange_duration.observe(elapsed.as_secs_f64());
    }

    /// An upstream token obtained (`hit`, `miss`) or not (`failure`).
    pub fn token_exchange(&self, result: &'static str) {
        self.token_exchanges
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// A token was decided by `path`: `jwt`, `introspection` or `cache`.
    pub fn decided_by(&self, path: &'static str) {
        self.decisions.get_or_create(&PathLabels { path }).inc();
    }

    /// `n` spans reached the collector.
    pub fn trace_spans_exported(&self, n: usize) {
        self.trace_spans_exported.inc_by(n as u64);
    }

    /// `n` spans were lost, for `reason` (`queue_full` or `export_failed`).
    pub fn trace_spans_dropped(&self, reason: &'static str, n: usize) {
        self.trace_spans_dropped
            .get_or_create(&ReasonLabels { reason })
            .inc_by(n as u64);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let now = unix_now();
        for (issuer, loaded) in self
            .keys_loaded_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let age = if *loaded == 0 {
                -1.0
            } else {
                now.saturating_sub(*loaded) as f64
            };
            self.key_set_age
                .get_or_create(&IssuerLabels {
                    issuer: issuer.clone(),
                })
                .set(age);
        }
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests;
