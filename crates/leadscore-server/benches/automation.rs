//! Automation under load (issue 6), on the real server over a real database:
//!
//! 1. `LEADS` leads are stored (200,000 by default) and the automation's
//!    first look at all of them is timed (what an upgrade costs once).
//! 2. A burst of `BURST` new leads (10,000) arrives; each becomes hot with
//!    one event posted over HTTP in batches of 1,000, and a trigger assigns
//!    it to one of `REPS` reps (64) with `senior_for_hot`. Timed from the
//!    first batch until every burst lead has an owner; then every rep's
//!    load is checked against its capacity.
//! 3. `HAPPENINGS` happenings (20,000) are put in the outbox at once for a
//!    local receiver; the time until all are delivered gives the rate.
//!
//! Run: `cargo bench -p leadscore-server --bench automation`
//! (`DATABASE_URL=postgres://...` for PostgreSQL; sizes from the variables
//! above). Prints one line per figure.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use leadscore_core::{Lead, StdField, Timestamp};
use leadscore_server::{AppState, Settings};
use leadscore_store::automation::{Happening, Webhook};
use leadscore_store::{NewLead, OnConflict, Store};
use serde_json::json;

const MODEL: &str = r#"
name = "bench"
[[band]]
name = "cold"
from = 0
[[band]]
name = "warm"
from = 25
[[band]]
name = "hot"
from = 50
[[band]]
name = "very_hot"
from = 76
[mql]
threshold = 50
[[fit]]
id = "vn"
field = "country"
equals = "VN"
points = 10
[[behavior]]
id = "demo"
events = ["demo_request"]
points = 50
[[behavior]]
id = "visit"
events = ["page_view"]
points = 5
half_life_days = 14
"#;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now() -> Timestamp {
    Timestamp::from_micros(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64,
    )
}

fn lead(id: String, country: &str) -> NewLead {
    let mut l = Lead::default();
    l.set(StdField::Id, id.clone());
    l.set(StdField::Email, format!("{id}@example.com"));
    l.set(StdField::Country, country);
    NewLead { lead: l, owner: None }
}

async fn wait_for(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "{what}: not done in {limit:?}");
        // Rarely: the check itself (a join over every lead) costs the server.
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let leads = env("LEADS", 200_000);
    let reps = env("REPS", 64);
    let burst = env("BURST", 10_000);
    let happenings = env("HAPPENINGS", 20_000);
    let dir = tempfile::tempdir().unwrap();
    let url = match std::env::var("DATABASE_URL") {
        Ok(base) if !base.is_empty() => leadscore_store::testing::fresh_postgres_schema(&base, "bench")
            .await
            .expect("PostgreSQL answers"),
        _ => format!("sqlite://{}", dir.path().join("bench.db").display()),
    };
    let store: Arc<dyn Store> = leadscore_store::open(&url).await.unwrap();
    println!("backend: {}", store.backend());

    // 64 reps: half senior; four territories; capacity below the burst in total.
    let countries = ["VN", "UA", "SG", "DE"];
    // Senior reps (half of them) can take three quarters of the burst.
    let capacity = (burst * 3 / 4 / reps.div_ceil(2)).max(1);
    let mut text = String::from("[automation]\npoll_millis = 200\n");
    for i in 0..reps {
        text.push_str(&format!(
            "[[automation.reps]]\nname = \"rep{i:02}\"\ncountries = [\"{}\"]\nseniority = \"{}\"\ncapacity = {capacity}\n",
            countries[i % countries.len()],
            if (i / countries.len()).is_multiple_of(2) { "senior" } else { "junior" }
        ));
    }
    text.push_str(
        "[[automation.triggers]]\nid = \"hot\"\nwhen = [{ field = \"band\", in = [\"hot\", \"very_hot\"] }]\n\
         actions = [{ do = \"assign\", strategy = \"senior_for_hot\" }]\n",
    );
    let settings = Settings::load(Some(("bench settings", &text)), |_| None).expect("valid settings");

    // The standing leads, with the model active.
    store.put_model("bench", MODEL, now()).await.unwrap();
    store.activate_model("bench", now(), false).await.unwrap();
    let started = Instant::now();
    for chunk in (0..leads).collect::<Vec<_>>().chunks(5000) {
        let batch = chunk
            .iter()
            .map(|i| lead(format!("base{i:07}"), countries[i % countries.len()]))
            .collect();
        store.write_leads(batch, OnConflict::Refuse, now()).await.unwrap();
    }
    println!("stored {leads} leads in {:.1} s", started.elapsed().as_secs_f64());

    let state = AppState::new(store.clone(), settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/v1", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(leadscore_server::serve(listener, state.clone(), async move {
        let _ = stopped.await;
    }));
    let (secret, hash) = leadscore_server::auth::new_token();
    store
        .create_token(leadscore_store::TokenRecord {
            hash,
            role: "admin".into(),
            user: None,
            created_at: now(),
        })
        .await
        .unwrap();
    leadscore_server::install_tls();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let automation = store.automation();

    // 1. The first look at every standing lead.
    let first = wait_for("the first look", Duration::from_secs(3600), async || {
        automation.unseen("", 1).await.unwrap().is_empty()
    })
    .await;
    println!(
        "first look at {leads} leads: {:.1} s ({:.0} leads/s)",
        first.as_secs_f64(),
        leads as f64 / first.as_secs_f64()
    );

    // 2. The burst.
    let ids: Vec<String> = (0..burst).map(|i| format!("burst{i:06}")).collect();
    for chunk in ids.chunks(5000) {
        let batch = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| lead(id.clone(), countries[i % countries.len()]))
            .collect();
        store.write_leads(batch, OnConflict::Refuse, now()).await.unwrap();
    }
    // Let the automation see the new (cold) leads first, as it would (the
    // routes touch what they write; this bench wrote to the store itself).
    state.automation.touch(ids.iter().cloned());
    wait_for("the new leads seen", Duration::from_secs(600), async || {
        automation.unseen("", 1).await.unwrap().is_empty()
    })
    .await;
    let started = Instant::now();
    let burst_start = now();
    let at = burst_start.to_string();
    for chunk in ids.chunks(1000) {
        let events: Vec<_> = chunk
            .iter()
            .map(|id| json!({"id": format!("d-{id}"), "lead": id, "type": "demo_request", "occurred_at": at}))
            .collect();
        let r = client
            .post(format!("{base}/events/batch"))
            .bearer_auth(&secret)
            .json(&events)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let ingested = started.elapsed();
    wait_for("the burst evaluated", Duration::from_secs(3600), async || {
        automation.unseen("", 1).await.unwrap().is_empty()
    })
    .await;
    // The moment the last burst lead got its owner, from the data itself.
    let (owned, last) = owners(&store).await;
    assert_eq!(
        owned, burst,
        "every burst lead has an owner (a rep or the fallback queue)"
    );
    let total = Duration::from_micros((last.as_micros() - burst_start.as_micros()).max(0) as u64);
    println!(
        "burst of {burst} hot leads: events stored in {:.2} s, every lead assigned {:.2} s after the first batch ({:.0} leads/s)",
        ingested.as_secs_f64(),
        total.as_secs_f64(),
        burst as f64 / total.as_secs_f64()
    );
    let loads = automation.loads().await.unwrap();
    let over: Vec<_> = loads.iter().filter(|l| l.open_leads > capacity as i64).collect();
    let assigned: i64 = loads.iter().map(|l| l.open_leads).sum();
    println!(
        "capacity {capacity} per rep: {assigned} leads went to reps, {} to the fallback queue, reps over capacity: {}",
        burst as i64 - assigned,
        over.len()
    );
    assert!(over.is_empty(), "a rep is over capacity: {over:?}");

    // 3. Webhook delivery rate to a local receiver.
    let received = Arc::new(AtomicU64::new(0));
    let r2 = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let r = r2.clone();
            async move {
                r.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", hook_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(hook_listener, app).await });
    automation
        .create_webhook(&Webhook {
            id: "wh_bench".into(),
            url: hook_url,
            events: vec!["bench.ping".into()],
            secret: "bench-secret-bench-secret".into(),
            created_at: now(),
            created_by: None,
            active: true,
        })
        .await
        .unwrap();
    let items: Vec<Happening> = (0..happenings)
        .map(|i| Happening {
            id: format!("hp{i:07}"),
            kind: "bench.ping".into(),
            lead: None,
            occurred_at: now(),
            payload: json!({"type": "bench.ping", "occurred_at": now().to_string(), "n": i}),
        })
        .collect();
    let started = Instant::now();
    for chunk in items.chunks(1000) {
        let from = automation.watermark("bench").await.unwrap().unwrap_or(0);
        assert!(automation.emit(chunk, "bench", from, from + 1).await.unwrap());
    }
    let enqueued = started.elapsed();
    state.automation.outbox.notify_one();
    wait_for("every delivery made", Duration::from_secs(3600), async || {
        automation
            .delivery_counts()
            .await
            .unwrap()
            .get("delivered")
            .copied()
            .unwrap_or(0)
            >= happenings as i64
    })
    .await;
    let took = started.elapsed();
    println!(
        "webhooks: {happenings} happenings written to the outbox in {:.2} s, all delivered {:.2} s after the first ({:.0}/s; the receiver counted {})",
        enqueued.as_secs_f64(),
        took.as_secs_f64(),
        happenings as f64 / took.as_secs_f64(),
        received.load(Ordering::Relaxed)
    );
    let _ = stop.send(());
    let _ = server.await;
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM"))
    {
        println!(
            "peak memory of this process (server and load): {}",
            line.trim_start_matches("VmHWM:").trim()
        );
    }
}

/// How many burst leads have an owner, and when the last one changed.
async fn owners(store: &Arc<dyn Store>) -> (usize, Timestamp) {
    let mut n = 0;
    let mut last = Timestamp::from_micros(0);
    let mut q = leadscore_store::LeadQuery {
        text: Some("burst".into()),
        limit: 1000,
        ..Default::default()
    };
    loop {
        let (page, next) = store.list_leads(&q).await.unwrap();
        n += page.iter().filter(|r| r.owner.is_some()).count();
        last = page.iter().map(|r| r.updated_at).fold(last, Timestamp::max);
        match next {
            Some(c) => q.after = Some(c),
            None => return (n, last),
        }
    }
}
