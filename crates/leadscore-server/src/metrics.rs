//! Prometheus metrics: requests and latencies per route, events ingested,
//! rescoring progress. Served at `/metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub events: Family<StatusLabels, Counter>,
    pub rescore_done: Gauge,
    pub rescore_total: Gauge,
    pub webhook_deliveries: Family<StatusLabels, Counter>,
    /// Leads the automation engine has evaluated.
    pub automation_evaluated: Counter,
    /// Leads touched and waiting for the automation engine.
    pub automation_waiting: Gauge,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("leadscore");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        let latency =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            latency.clone(),
        );
        let events = Family::<StatusLabels, Counter>::default();
        registry.register(
            "events_ingested",
            "Events received, by outcome (accepted, duplicate, rejected)",
            events.clone(),
        );
        let rescore_done = Gauge::default();
        registry.register(
            "rescore_done_leads",
            "Leads rescored so far by the latest model activation",
            rescore_done.clone(),
        );
        let rescore_total = Gauge::default();
        registry.register(
            "rescore_total_leads",
            "Leads to rescore in the latest model activation",
            rescore_total.clone(),
        );
        let webhook_deliveries = Family::<StatusLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery tries, by outcome (delivered, failed)",
            webhook_deliveries.clone(),
        );
        let automation_evaluated = Counter::default();
        registry.register(
            "automation_evaluated_leads",
            "Lead evaluations by the automation engine",
            automation_evaluated.clone(),
        );
        let automation_waiting = Gauge::default();
        registry.register(
            "automation_waiting_leads",
            "Leads waiting for the automation engine or being evaluated (one touched again while evaluated counts twice)",
            automation_waiting.clone(),
        );
        Metrics {
            automation_evaluated,
            automation_waiting,
            webhook_deliveries,
            registry,
            requests,
            latency,
            events,
            rescore_done,
            rescore_total,
        }
    }
}

impl Metrics {
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Counts webhook tries: delivered and failed.
    pub fn webhooks(&self, delivered: u64, failed: u64) {
        for (status, n) in [("delivered", delivered), ("failed", failed)] {
            self.webhook_deliveries
                .get_or_create(&StatusLabels {
                    status: status.into(),
                })
                .inc_by(n);
        }
    }

    pub fn count_events(&self, status: &str, n: u64) {
        if n > 0 {
            self.events
                .get_or_create(&StatusLabels {
                    status: status.into(),
                })
                .inc_by(n);
        }
    }
}

/// Middleware: counts and times every request by its route template (never
/// the raw path, which may hold ids).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    // Standard methods only: made-up ones would each add a series for good.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let m = &state.metrics;
    m.requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    m.latency
        .get_or_create(&RouteLabels { method, route })
        .observe(started.elapsed().as_secs_f64());
    response
}
