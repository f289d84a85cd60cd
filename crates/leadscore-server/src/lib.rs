//! leadscore's service: the HTTP API under `/api/v1`, its authentication,
//! health and metrics endpoints, and the background rescoring after a model
//! activation. Wire types live here, not in the core.

pub mod auth;
pub mod automation;
pub mod demo;
pub mod error;
pub mod import;
pub mod metrics;
pub mod openapi;
pub mod predictive;
pub mod reports;
mod routes;
pub mod settings;
pub mod view;
pub mod web;
pub mod wire;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use leadscore_core::Timestamp;
use leadscore_store::Store;
use tokio::net::TcpListener;

pub use routes::resume_rescore;
pub use settings::Settings;

/// Makes TLS available to HTTP clients (webhooks): rustls with the `ring`
/// provider. Call before building a `reqwest::Client`; calling again is harmless.
pub fn install_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The service's clock: real time, or a test's.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        Timestamp::from_micros(micros)
    })
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub metrics: Arc<metrics::Metrics>,
    pub tokens: Arc<auth::TokenCache>,
    pub settings: Arc<Settings>,
    /// False while shutting down (`/readyz` says so).
    pub ready: Arc<AtomicBool>,
    /// True while the store warms up after a start (`/readyz` says so;
    /// see `Store::warm_up`).
    pub warming: Arc<AtomicBool>,
    /// The background rescoring of the latest model activation, if running.
    pub rescoring: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// The active predictive model, parsed once.
    pub predictive: Arc<predictive::Cache>,
    /// Triggers, routing, aging, nurture and webhooks (see `automation`).
    pub automation: Arc<automation::Handle>,
    /// Where the automation's loops run: `leadscore serve` gives them a
    /// runtime of their own, at a lower priority; `None`: the current one.
    pub background: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, settings: Settings) -> Self {
        install_tls();
        let rules = settings
            .automation
            .compile()
            .unwrap_or_else(|e| panic!("settings are checked when loaded: {e}"));
        AppState {
            automation: Arc::new(automation::Handle::new(rules)),
            store,
            clock: system_clock(),
            metrics: Arc::new(metrics::Metrics::default()),
            tokens: Arc::default(),
            settings: Arc::new(settings),
            ready: Arc::new(AtomicBool::new(true)),
            warming: Arc::new(AtomicBool::new(false)),
            rescoring: Arc::default(),
            predictive: Arc::default(),
            background: None,
        }
    }

    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let limit = state.settings.max_body_bytes;
    Router::new()
        .nest("/api/v1", routes::api())
        .merge(routes::ops())
        .merge(web::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Serves until `shutdown` completes, then stops taking connections and
/// finishes the requests under way (graceful shutdown).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ready = state.ready.clone();
    let workers = automation::start(&state);
    let (automation, store) = (state.automation.clone(), state.store.clone());
    let app = router(state);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            ready.store(false, Ordering::SeqCst);
        })
        .await;
    // What the automation has not done yet is done at the next start (it is
    // derived from stored state, and deliveries wait in the outbox).
    for w in workers {
        w.abort();
    }
    // The leads it found unchanged are recorded, so that the next start does
    // not look at them again.
    automation.flush(&store).await;
    served
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests under way");
}
