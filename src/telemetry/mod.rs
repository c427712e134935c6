//! Logs, traces and metrics.
//!
//! - Logs: `tracing` to standard error, plain or JSON, filtered by `HEARKEN_LOG`.
//! - Metrics ([`Metrics`]): always kept for the Prometheus scrape endpoint of `hearken serve`
//!   ([`serve_scrape`]); also pushed over OTLP when an OTLP endpoint is configured.
//! - Traces: `tracing` spans (`stream`, `conversation`) exported over OTLP when an endpoint is
//!   configured, children of the caller's W3C trace context ([`rpc::RpcLayer`]).
//!
//! OTLP follows the standard variables: `OTEL_EXPORTER_OTLP_ENDPOINT` (or the
//! `..._TRACES_ENDPOINT` / `..._METRICS_ENDPOINT` ones) switches export on, over gRPC;
//! `OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none` and `OTEL_METRICS_EXPORTER=none` switch
//! it off; `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_METRIC_EXPORT_INTERVAL` and
//! `OTEL_BSP_*` work as the OpenTelemetry SDK documents them.
//!
//! Privacy: no transcript text, metadata value, participant or conversation id is ever put in a
//! log line, span field or metric attribute.

pub mod metrics;
pub mod rpc;
mod scrape;

use std::sync::Arc;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub use metrics::Metrics;
pub use scrape::{serve_scrape, serve_scrape_with};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

fn log_filter(default_filter: &str) -> EnvFilter {
    EnvFilter::try_from_env(crate::config::ENV_LOG)
        .unwrap_or_else(|_| EnvFilter::new(default_filter))
}

fn fmt_layer<S>(format: LogFormat) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    match format {
        LogFormat::Plain => layer.boxed(),
        LogFormat::Json => layer.json().boxed(),
    }
}

/// Installs logging only (every verb but `serve`). `default_filter` applies when `HEARKEN_LOG`
/// is unset.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    let result = tracing_subscriber::registry()
        .with(fmt_layer(format).with_filter(log_filter(default_filter)))
        .try_init();
    // A subscriber already installed (tests) is fine.
    let _ = result;
}

/// Which OTLP signals the environment asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtlpSignals {
    /// Export spans.
    pub traces: bool,
    /// Export metrics.
    pub metrics: bool,
}

impl OtlpSignals {
    /// Reads the standard `OTEL_*` variables through `var`.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
        let disabled =
            var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let none = |name: &str| var(name).is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
        let any_endpoint = set("OTEL_EXPORTER_OTLP_ENDPOINT");
        OtlpSignals {
            traces: !disabled
                && !none("OTEL_TRACES_EXPORTER")
                && (any_endpoint || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")),
            metrics: !disabled
                && !none("OTEL_METRICS_EXPORTER")
                && (any_endpoint || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")),
        }
    }
}

/// The telemetry of `hearken serve`: instruments to record into, the registry the scrape
/// endpoint serves, and the providers to flush at exit ([`Telemetry::shutdown`]).
#[derive(Debug)]
pub struct Telemetry {
    /// The service's instruments.
    pub metrics: Arc<Metrics>,
    /// What `/metrics` serves.
    pub registry: prometheus::Registry,
    meter_provider: SdkMeterProvider,
    tracer_provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    fn build(otlp: OtlpSignals) -> anyhow::Result<Self> {
        let registry = prometheus::Registry::new();
        let prometheus = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .build()
            .context("cannot build the Prometheus exporter")?;
        #[cfg(target_os = "linux")]
        {
            // process_resident_memory_bytes, process_open_fds, process_cpu_seconds_total, ...
            let _ = registry.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ));
        }
        let resource = resource();
        let mut meters = SdkMeterProvider::builder()
            .with_resource(resource.clone())
            .with_reader(prometheus);
        if otlp.metrics {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .build()
                .context("cannot build the OTLP metric exporter")?;
            meters = meters.with_periodic_exporter(exporter);
        }
        let meter_provider = meters.build();
        let metrics = Arc::new(Metrics::new(&opentelemetry::metrics::MeterProvider::meter(
            &meter_provider,
            "hearken",
        )));
        let tracer_provider = if otlp.traces {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
                .context("cannot build the OTLP span exporter")?;
            Some(
                SdkTracerProvider::builder()
                    .with_resource(resource)
                    .with_batch_exporter(exporter)
                    .build(),
            )
        } else {
            None
        };
        Ok(Telemetry {
            metrics,
            registry,
            meter_provider,
            tracer_provider,
        })
    }

    /// Sets up logs, metrics and traces for `hearken serve`, from the flags and the standard
    /// `OTEL_*` variables. Call inside the Tokio runtime (the OTLP exporters use it).
    pub fn init_serve(format: LogFormat, default_filter: &str) -> anyhow::Result<Self> {
        let otlp = OtlpSignals::from_env(|name| std::env::var(name).ok());
        let telemetry = Self::build(otlp)?;
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let traces = telemetry.tracer_provider.as_ref().map(|provider| {
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("hearken"))
                .with_filter(EnvFilter::new("info"))
        });
        let result = tracing_subscriber::registry()
            .with(fmt_layer(format).with_filter(log_filter(default_filter)))
            .with(traces)
            .try_init();
        let _ = result;
        tracing::info!(
            otlp_traces = otlp.traces,
            otlp_metrics = otlp.metrics,
            "telemetry ready"
        );
        Ok(telemetry)
    }

    /// A meter on the same provider, for instruments outside [`Metrics`] (the pipeline's).
    pub fn meter(&self) -> opentelemetry::metrics::Meter {
        opentelemetry::metrics::MeterProvider::meter(&self.meter_provider, "hearken")
    }

    /// Flushes and stops the exporters: spans first, then metrics.
    pub fn shutdown(self) {
        if let Some(provider) = self.tracer_provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "flushing spans failed");
        }
        if let Err(error) = self.meter_provider.shutdown() {
            tracing::debug!(%error, "flushing metrics failed");
        }
    }
}

fn resource() -> opentelemetry_sdk::Resource {
    // Reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; our name when neither names one.
    let from_env = opentelemetry_sdk::Resource::builder().build();
    let named = from_env
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|v| !v.as_str().starts_with("unknown_service"));
    let mut builder = opentelemetry_sdk::Resource::builder().with_attribute(
        opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
    );
    if !named {
        builder = builder.with_service_name("hearken");
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn otlp_is_off_without_an_endpoint() {
        assert_eq!(OtlpSignals::from_env(env(&[])), OtlpSignals::default());
    }

    #[test]
    fn the_shared_endpoint_switches_on_both_signals_unless_one_is_none() {
        let both = OtlpSignals::from_env(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")]));
        assert!(both.traces && both.metrics);
        let traces_only = OtlpSignals::from_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ]));
        assert!(traces_only.traces && !traces_only.metrics);
        let disabled = OtlpSignals::from_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_SDK_DISABLED", "true"),
        ]));
        assert_eq!(disabled, OtlpSignals::default());
    }

    #[test]
    fn a_signal_endpoint_switches_on_that_signal_only() {
        let metrics = OtlpSignals::from_env(env(&[(
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "http://c:4317",
        )]));
        assert!(metrics.metrics && !metrics.traces);
    }
}
