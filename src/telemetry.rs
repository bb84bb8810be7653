//! Logs (tracing: JSON for `serve`, readable for `demo`) and Prometheus metrics.
//!
//! Metrics live in a registry owned by the application state, not in globals, so tests and
//! benchmarks can run several Vouch instances in one process.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogConfig, LogFormat};

/// Installs the global tracing subscriber. Safe to call more than once (later calls are
/// ignored), which tests rely on.
pub fn init_logging(config: &LogConfig) {
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.format {
        LogFormat::Json => registry.with(json_layer(std::io::stdout)).try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_target(false),
            )
            .try_init(),
    };
    let _ = result;
}

/// The JSON log lines of `serve`, written to `writer`: one object per event, with the fields
/// of every span the event is in (`spans`, outermost first), so that a line logged deep in a
/// service, or by a task it spawned, still carries the request's id. Tests read this very
/// format.
pub fn json_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_target(true)
        .with_writer(writer)
}

/// The outcome of a call to an upstream service, as counted in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamOutcome {
    Success,
    ClientError,
    Throttled,
    ServerError,
    Timeout,
    NetworkError,
}

impl UpstreamOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamOutcome::Success => "success",
            UpstreamOutcome::ClientError => "client_error",
            UpstreamOutcome::Throttled => "throttled",
            UpstreamOutcome::ServerError => "server_error",
            UpstreamOutcome::Timeout => "timeout",
            UpstreamOutcome::NetworkError => "network_error",
        }
    }
}

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    upstream_calls: IntCounterVec,
    upstream_duration: HistogramVec,
    /// Days until each integration secret expires (alerting on < 30 is the MSP's choice).
    pub integration_secret_days_left: IntGaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("vouch".into()), None)
            .expect("static registry settings are valid");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status.",
            ),
            &["route", "method", "status"],
        )
        .expect("static metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route and method.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                60.0,
            ]),
            &["route", "method"],
        )
        .expect("static metric");
        let upstream_calls = IntCounterVec::new(
            Opts::new(
                "upstream_calls_total",
                "Calls to upstream services (Microsoft, PSAs, SMS) by service and outcome.",
            ),
            &["service", "outcome"],
        )
        .expect("static metric");
        let upstream_duration = HistogramVec::new(
            HistogramOpts::new(
                "upstream_call_duration_seconds",
                "Latency of calls to upstream services.",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            ]),
            &["service"],
        )
        .expect("static metric");
        let integration_secret_days_left = IntGaugeVec::new(
            Opts::new(
                "integration_secret_days_left",
                "Days until a tenant integration's secret expires (negative: expired).",
            ),
            &["tenant", "integration"],
        )
        .expect("static metric");
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(upstream_calls.clone()),
            Box::new(upstream_duration.clone()),
            Box::new(integration_secret_days_left.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            upstream_calls,
            upstream_duration,
            integration_secret_days_left,
        }
    }

    pub fn observe_http(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.http_requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[route, method])
            .observe(seconds);
    }

    pub fn observe_upstream(&self, service: &str, outcome: UpstreamOutcome, seconds: f64) {
        self.upstream_calls
            .with_label_values(&[service, outcome.as_str()])
            .inc();
        self.upstream_duration
            .with_label_values(&[service])
            .observe(seconds);
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding into memory does not fail");
        String::from_utf8(buffer).expect("Prometheus text format is UTF-8")
    }
}
