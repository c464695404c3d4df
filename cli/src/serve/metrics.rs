//! Prometheus metrics (`GET /metrics`, text exposition format).
//!
//! Engine and cache figures are read from their counters at scrape time (a collector), so
//! they are never out of step; what only the HTTP layer sees (requests by status, time to
//! first token, request duration, safety blocks) is counted here.

use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use llmedge::deployment::Deployment;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    ttft: Histogram,
    duration: Histogram,
    safety_blocks: Counter,
}

impl Metrics {
    pub fn new(deployment: Arc<OnceLock<Deployment>>) -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "llmedge_requests",
            "HTTP requests by endpoint and status",
            requests.clone(),
        );
        let ttft = Histogram::new(exponential_buckets(0.005, 2.0, 16));
        registry.register(
            "llmedge_time_to_first_token_seconds",
            "Time from a request's arrival to its first generated token",
            ttft.clone(),
        );
        let duration = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        registry.register(
            "llmedge_request_duration_seconds",
            "Wall time of generation requests",
            duration.clone(),
        );
        let safety_blocks = Counter::default();
        registry.register(
            "llmedge_safety_blocks",
            "Requests whose input or output the safety layer blocked",
            safety_blocks.clone(),
        );
        registry.register_collector(Box::new(EngineCollector { deployment }));
        Metrics {
            registry,
            requests,
            ttft,
            duration,
            safety_blocks,
        }
    }

    pub fn request(&self, endpoint: &str, status: u16) {
        self.requests
            .get_or_create(&vec![
                ("endpoint".into(), endpoint.into()),
                ("status".into(), status.to_string()),
            ])
            .inc();
    }

    pub fn completion(&self, ttft_ms: f64, total_s: f64, blocked: bool) {
        if ttft_ms > 0.0 {
            self.ttft.observe(ttft_ms / 1e3);
        }
        self.duration.observe(total_s);
        if blocked {
            self.safety_blocks.inc();
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[derive(Debug)]
struct EngineCollector {
    deployment: Arc<OnceLock<Deployment>>,
}

/// One engine statistic exported as a metric: name, help text and how to read it.
type StatMetric = (&'static str, &'static str, fn(&llmedge::EngineStats) -> u64);

fn model_label(id: &str) -> Labels {
    vec![("model".into(), id.into())]
}

impl Collector for EngineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(deployment) = self.deployment.get() else {
            return Ok(());
        };
        let stats: Vec<_> = deployment
            .models()
            .iter()
            .map(|m| (m.id.as_str(), m.engine.stats()))
            .collect();
        let gauges: [StatMetric; 5] = [
            ("llmedge_queue_depth", "Requests waiting for a slot", |s| {
                s.queued.into()
            }),
            (
                "llmedge_active_sequences",
                "Sequences being prefilled or generated",
                |s| s.active.into(),
            ),
            (
                "llmedge_slots",
                "Sequences an engine decodes together",
                |s| s.slots.into(),
            ),
            (
                "llmedge_prefix_cache_entries",
                "Prompt prefixes held in host memory",
                |s| s.prefix_cache_entries,
            ),
            (
                "llmedge_prefix_cache_bytes",
                "Host memory held by cached prefixes",
                |s| s.prefix_cache_bytes,
            ),
        ];
        for (name, help, get) in gauges {
            let mut family =
                encoder.encode_descriptor(name, help, None, ConstGauge::new(0i64).metric_type())?;
            for (id, s) in &stats {
                ConstGauge::new(get(s) as i64).encode(family.encode_family(&model_label(id))?)?;
            }
        }
        let counters: [StatMetric; 7] = [
            (
                "llmedge_generated_tokens",
                "Tokens generated (rate() gives tok/s)",
                |s| s.generated_tokens,
            ),
            (
                "llmedge_prompt_tokens",
                "Prompt tokens of started requests",
                |s| s.prompt_tokens,
            ),
            (
                "llmedge_cached_prompt_tokens",
                "Prompt tokens reused from a KV cache",
                |s| s.cached_prompt_tokens,
            ),
            ("llmedge_decode_steps", "Batched decode steps", |s| {
                s.decode_steps
            }),
            (
                "llmedge_engine_requests_finished",
                "Requests ended by an engine",
                |s| s.finished,
            ),
            (
                "llmedge_rejected_busy",
                "Requests refused because the queue was full",
                |s| s.rejected_busy,
            ),
            (
                "llmedge_timed_out",
                "Requests that ran past their deadline",
                |s| s.timed_out,
            ),
        ];
        for (name, help, get) in counters {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                ConstCounter::new(0u64).metric_type(),
            )?;
            for (id, s) in &stats {
                ConstCounter::new(get(s)).encode(family.encode_family(&model_label(id))?)?;
            }
        }
        let mut hits = encoder.encode_descriptor(
            "llmedge_cache_hits",
            "Cache hits: response = answered from the response cache, prefix = requests that \
             reused a cached prompt prefix",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?;
        let response = deployment.cache().map_or(0, |c| c.stats().hits);
        let prefix: u64 = stats.iter().map(|(_, s)| s.prefix_hits).sum();
        for (cache, value) in [("response", response), ("prefix", prefix)] {
            let labels: Labels = vec![("cache".into(), cache.into())];
            ConstCounter::new(value).encode(hits.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
