//! Helpers for the HTTP tests: a real server (`leadscore_server::serve` on a
//! `127.0.0.1:0` listener) over a real database (a SQLite file in a temp dir,
//! and PostgreSQL in a fresh schema when `DATABASE_URL` is set), tokens of
//! every role, and a small JSON client.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use leadscore_core::Timestamp;
use leadscore_server::{AppState, Settings, auth};
use leadscore_store::{Store, TokenRecord};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The spec's model, verbatim (`b2b-default`).
pub const SPEC_MODEL: &str = include_str!("../../../leadscore-core/tests/fixtures/spec-model.toml");

/// The worked example's moment; the test servers' clock stands still there.
pub const T: &str = "2026-11-01T00:00:00Z";

pub fn t() -> Timestamp {
    Timestamp::parse(T).unwrap()
}

/// `days` days before T, as RFC 3339.
pub fn before_t(days: f64) -> String {
    t().minus_days(days).to_string()
}

/// A running server and what it needs to stay alive.
pub struct Server {
    pub base: String,
    pub backend: &'static str,
    pub store: Arc<dyn Store>,
    pub state: AppState,
    pub client: reqwest::Client,
    pub admin: String,
    shutdown: Option<oneshot::Sender<()>>,
    pub handle: Option<JoinHandle<std::io::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// The full URL of an API path (`/leads` -> `http://.../api/v1/leads`).
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// A new token of `role` (for `user`), straight into the store.
    pub async fn token(&self, role: &str, user: Option<&str>) -> String {
        make_token(&self.store, role, user).await
    }

    pub fn req(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.api(path)).bearer_auth(token)
    }

    /// A JSON call as admin.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut rb = self.req(method, path, &self.admin);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        send(rb).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.admin(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.admin(Method::POST, path, Some(body)).await
    }

    /// Signals shutdown and waits for `serve` to return.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let handle = self.handle.take().expect("the server task");
        tokio::time::timeout(Duration::from_secs(30), handle)
            .await
            .expect("the server stops within 30 s")
            .expect("the server task does not panic")
    }

    pub fn signal_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Stores the spec model and activates it, waiting for the rescoring.
    pub async fn activate_spec_model(&self) {
        let (s, v) = self.post_model(SPEC_MODEL).await;
        assert!(s == StatusCode::CREATED || s == StatusCode::OK, "{s} {v}");
        self.activate("b2b-default").await;
    }

    pub async fn post_model(&self, toml: &str) -> (StatusCode, Value) {
        send(
            self.req(Method::POST, "/models", &self.admin)
                .header("content-type", "application/toml")
                .body(toml.to_owned()),
        )
        .await
    }

    /// Activates a model (202) and polls its progress until it has finished.
    pub async fn activate(&self, name: &str) -> Value {
        let (s, v) = self
            .admin(Method::POST, &format!("/models/{name}/activate"), None)
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        self.wait_rescored(name).await
    }

    pub async fn wait_rescored(&self, name: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (s, m) = self.get(&format!("/models/{name}")).await;
            assert_eq!(s, StatusCode::OK, "{m}");
            if m["rescore"]["finished"] == Value::Bool(true) {
                return m;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the rescoring did not finish in 60 s: {m}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every lead (as admin), best first.
    pub async fn all_leads(&self) -> Vec<Value> {
        let (s, v) = self.get("/leads?limit=1000").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v["next_cursor"].is_null(), "more than 1000 leads in a test");
        v["leads"].as_array().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn make_token(store: &Arc<dyn Store>, role: &str, user: Option<&str>) -> String {
    let (secret, hash) = auth::new_token();
    store
        .create_token(TokenRecord {
            hash,
            role: role.into(),
            user: user.map(str::to_owned),
            created_at: t(),
        })
        .await
        .unwrap();
    secret
}

/// Sends a request and reads the answer as JSON (`Value::Null` when the body
/// is empty, a string when it is not JSON).
pub async fn send(rb: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = rb.send().await.expect("the server answers");
    let status = r.status();
    let text = r.text().await.expect("the body is readable");
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, v)
}

/// Asserts an error answer: its status, its one shape and its code and field.
#[track_caller]
pub fn assert_error(got: &(StatusCode, Value), status: u16, code: &str, field: Option<&str>) {
    let (s, v) = got;
    assert_eq!(s.as_u16(), status, "{v}");
    let e = &v["error"];
    assert!(e.is_object(), "the error shape is {{\"error\": {{...}}}}: {v}");
    assert_eq!(e["code"], code, "{v}");
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "an error says what is wrong: {v}"
    );
    match field {
        Some(f) => assert_eq!(e["field"], f, "{v}"),
        None => assert!(e["field"].is_null(), "{v}"),
    }
}

pub fn client() -> reqwest::Client {
    leadscore_server::install_tls();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Starts a server on `store` with the clock standing at T.
pub async fn start_on(store: Arc<dyn Store>, settings: Settings, dir: Option<tempfile::TempDir>) -> Server {
    start_with_clock(store, settings, dir, Arc::new(t)).await
}

/// A clock a test moves by hand (microseconds since the epoch).
#[derive(Clone)]
pub struct TestClock(pub Arc<std::sync::atomic::AtomicI64>);

impl TestClock {
    pub fn at(t: Timestamp) -> TestClock {
        TestClock(Arc::new(std::sync::atomic::AtomicI64::new(t.as_micros())))
    }
    pub fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.as_micros(), std::sync::atomic::Ordering::SeqCst);
    }
    pub fn clock(&self) -> leadscore_server::Clock {
        let c = self.clone();
        Arc::new(move || c.now())
    }
}

/// Starts a server on `store` with the given clock.
pub async fn start_with_clock(
    store: Arc<dyn Store>,
    settings: Settings,
    dir: Option<tempfile::TempDir>,
    clock: leadscore_server::Clock,
) -> Server {
    let mut state = AppState::new(store.clone(), settings);
    state.clock = clock;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(leadscore_server::serve(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    let admin = make_token(&store, "admin", None).await;
    Server {
        base: format!("http://{addr}"),
        backend: store.backend(),
        store,
        state,
        client: client(),
        admin,
        shutdown: Some(tx),
        handle: Some(handle),
        _dir: dir,
    }
}

/// One server per backend: SQLite always, PostgreSQL when `DATABASE_URL` is set.
pub async fn servers() -> Vec<Server> {
    servers_with(Settings::default()).await
}

pub async fn servers_with(settings: Settings) -> Vec<Server> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("api.db").display());
    let store = leadscore_store::open(&url).await.unwrap();
    let mut out = vec![start_on(store, settings.clone(), Some(dir)).await];
    match std::env::var("DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let url = fresh_schema(&base).await;
            let store = leadscore_store::open(&url).await.expect("PostgreSQL store opens");
            out.push(start_on(store, settings, None).await);
        }
        _ => eprintln!("PostgreSQL API tests SKIPPED: DATABASE_URL is not set"),
    }
    out
}

/// A fresh PostgreSQL schema for one test; returns a URL that uses it.
pub async fn fresh_schema(base: &str) -> String {
    leadscore_store::testing::fresh_postgres_schema(base, "x")
        .await
        .expect("PostgreSQL at DATABASE_URL answers")
}

/// The worked example's lead (`id`), with a corporate e-mail at its own domain.
pub fn spec_lead(id: &str) -> Value {
    serde_json::json!({
        "id": id,
        "first_name": "An",
        "last_name": "Nguyen",
        "job_title": "Founder & CEO",
        "industry": "Travel",
        "employees": 120,
        "email": format!("{}@lotus-travel.vn", id.to_lowercase()),
        "phone": "+84 912 345 678",
        "company": "Lotus Travel",
    })
}

/// The worked example's six events for `lead` (ids `{prefix}-1` .. `-6`).
pub fn spec_events(lead: &str, prefix: &str) -> Vec<Value> {
    let ev = |n: u32, kind: &str, days: f64, props: Value| {
        serde_json::json!({"id": format!("{prefix}-{n}"), "lead": lead, "type": kind,
            "occurred_at": before_t(days), "properties": props})
    };
    vec![
        ev(1, "email_clicked", 30.0, Value::Null),
        ev(2, "email_clicked", 60.0, Value::Null),
        ev(3, "page_viewed", 10.0, serde_json::json!({"path": "/pricing"})),
        ev(4, "page_viewed", 40.0, serde_json::json!({"path": "/pricing"})),
        ev(5, "demo_requested", 2.0, Value::Null),
        ev(6, "demo_requested", 20.0, Value::Null),
    ]
}

/// What a rejected request must leave as it was: the counts, every lead with
/// its score, and every lead's events and history.
/// A lead as served, without the automation's state (written in the
/// background, when the automation next looks at the lead).
pub async fn lead_data(srv: &Server, id: &str) -> Value {
    let (_, mut v) = srv.get(&format!("/leads/{id}")).await;
    if let Some(m) = v.as_object_mut() {
        m.remove("automation");
    }
    v
}

pub async fn snapshot(srv: &Server) -> Value {
    let counts = srv.store.counts().await.unwrap();
    // The automation's own state (when it next looks at a lead) is derived
    // and written in the background: not part of what a request changed.
    let mut leads = srv.all_leads().await;
    for l in &mut leads {
        l.as_object_mut().unwrap().remove("automation");
    }
    let mut per_lead = Vec::new();
    for l in &leads {
        let id = l["id"].as_str().unwrap();
        let (_, ev) = srv.get(&format!("/leads/{id}/events")).await;
        let (_, h) = srv.get(&format!("/leads/{id}/history")).await;
        per_lead.push(serde_json::json!({"events": ev, "history": h}));
    }
    serde_json::json!({"counts": [counts.0, counts.1], "leads": leads, "per_lead": per_lead})
}
