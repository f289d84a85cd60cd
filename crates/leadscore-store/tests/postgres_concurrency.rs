//! Two PostgreSQL store instances (as two server instances would be) writing
//! the same leads at once: afterwards every stored score is the engine's
//! answer for the stored lead and events, and every accepted event is stored
//! exactly once. Runs when `DATABASE_URL` is set (SKIPPED otherwise).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use leadscore_core::{Event, Lead, ScoringModel, StdField, Timestamp};
use leadscore_store::postgres::PgStore;
use leadscore_store::*;

const SPEC_MODEL: &str = include_str!("../../leadscore-core/tests/fixtures/spec-model.toml");
const SAMPLE_MODEL: &str = include_str!("../../../examples/model.toml");
const LEADS: usize = 12;
const TASKS: usize = 6;
const BATCHES: usize = 15;
const BATCH: usize = 40;

fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("\n*** PostgreSQL concurrency test SKIPPED: DATABASE_URL is not set ***\n");
            None
        }
    }
}

async fn admin(base: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls)
        .await
        .expect("connect to DATABASE_URL");
    tokio::spawn(conn);
    client
}

fn t0() -> Timestamp {
    Timestamp::parse("2026-11-01T00:00:00Z").unwrap()
}

fn lead_id(i: usize) -> String {
    format!("CC-{i:02}")
}

/// Event `n` of task `task`: spread over all leads, so every task writes
/// every lead. Every fifth event repeats an id another task also sends, and
/// some name a lead that does not exist.
fn event(task: usize, batch: usize, n: usize) -> Event {
    let k = batch * BATCH + n;
    let (id, lead) = if k.is_multiple_of(5) {
        // Shared by all tasks: exactly one of them gets it in.
        (format!("shared-{k}"), lead_id(k % LEADS))
    } else if k.is_multiple_of(97) {
        (format!("t{task}-{k}"), "nobody".to_owned())
    } else {
        (format!("t{task}-{k}"), lead_id((k * 7 + task) % LEADS))
    };
    let (kind, props): (&str, &[(&str, &str)]) = match k % 4 {
        0 => ("email_clicked", &[]),
        1 => ("page_viewed", &[("path", "/pricing")]),
        2 => ("demo_requested", &[]),
        _ => ("page_viewed", &[("path", "/blog")]),
    };
    Event {
        id,
        lead,
        kind: kind.into(),
        occurred_at: t0().minus_days((k % 90) as f64 + 0.5),
        properties: props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

async fn run(url: String) {
    // Both instances start at once on the empty schema (the advisory lock
    // keeps them from racing on the tables).
    let (a, b) = tokio::join!(PgStore::open(&url), PgStore::open(&url));
    let stores: [Arc<dyn Store>; 2] = [Arc::new(a.unwrap()), Arc::new(b.unwrap())];
    let now = t0();
    assert_eq!(
        stores[0].put_model("spec", SPEC_MODEL, now).await.unwrap(),
        PutModel::Created
    );
    // A second before `now`, so that the second model's activation below
    // falls at `now` itself (each activation is later than the one before).
    let before = Timestamp::from_micros(now.as_micros() - 1_000_000);
    stores[0].activate_model("spec", before, false).await.unwrap();
    let leads = (0..LEADS)
        .map(|i| NewLead {
            lead: Lead::new(lead_id(i))
                .with(StdField::JobTitle, "Founder & CEO")
                .with(StdField::Industry, "Travel")
                .with(StdField::Employees, "120")
                .with(StdField::Email, format!("cc{i}@example.test")),
            owner: None,
        })
        .collect();
    stores[1]
        .write_leads(leads, OnConflict::Refuse, now)
        .await
        .unwrap();

    // Several tasks per instance ingest interleaved batches; one more edits
    // the leads meanwhile (a rescore that races with the ingests).
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = stores[task % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for batch in 0..BATCHES {
                let events: Vec<Event> = (0..BATCH).map(|n| event(task, batch, n)).collect();
                let statuses = store.ingest(events.clone(), now).await.unwrap();
                assert_eq!(statuses.len(), events.len());
                for (e, s) in events.into_iter().zip(statuses) {
                    match s {
                        IngestStatus::Accepted => accepted.push(e.id),
                        IngestStatus::Duplicate => assert!(e.id.starts_with("shared-"), "{} duplicate", e.id),
                        IngestStatus::Rejected(why) => {
                            assert_eq!(e.lead, "nobody");
                            assert_eq!(why, "unknown lead `nobody`");
                        }
                    }
                }
            }
            accepted
        }));
    }
    let editor = {
        let store = stores[1].clone();
        tokio::spawn(async move {
            for round in 0..3 {
                for i in 0..LEADS {
                    let title = if (i + round) % 2 == 0 {
                        "Intern"
                    } else {
                        "VP Sales"
                    };
                    let patch = LeadPatch {
                        fields: vec![(StdField::JobTitle, Some(title.into()))],
                        ..Default::default()
                    };
                    store.update_lead(&lead_id(i), patch, now).await.unwrap().unwrap();
                }
            }
        })
    };
    let mut accepted: Vec<String> = Vec::new();
    for t in tasks {
        accepted.extend(t.await.unwrap());
    }
    editor.await.unwrap();

    // Every accepted event is stored exactly once, and nothing else is.
    let unique: HashSet<&String> = accepted.iter().collect();
    assert_eq!(unique.len(), accepted.len(), "an event was accepted twice");
    let shared = (0..BATCHES * BATCH).filter(|k| k.is_multiple_of(5)).count();
    assert_eq!(
        accepted.iter().filter(|id| id.starts_with("shared-")).count(),
        shared
    );
    let model = ScoringModel::from_toml(SPEC_MODEL, "spec").unwrap();
    let mut stored_ids: HashMap<String, usize> = HashMap::new();
    for i in 0..LEADS {
        let id = lead_id(i);
        // Both instances agree, and the score is the engine's for the data.
        let record = stores[0].get_lead(&id).await.unwrap().unwrap();
        assert_eq!(Some(&record), stores[1].get_lead(&id).await.unwrap().as_ref());
        let events = stores[1].lead_events(&id).await.unwrap();
        for e in &events {
            *stored_ids.entry(e.id.clone()).or_default() += 1;
        }
        let expected = model.score(&record.lead, &events, now);
        let stored = record.score.expect("scored");
        assert_eq!(stored.score, expected.score, "lead {id}");
        assert_eq!(stored.fit, expected.fit, "lead {id}");
        assert_eq!(stored.engagement, expected.engagement, "lead {id}");
        assert_eq!(stored.mql, expected.mql, "lead {id}");
        // The history ends at the current score.
        let last = stores[0].history(&id).await.unwrap().pop().unwrap();
        assert_eq!(
            (last.score, last.band.as_str(), last.mql),
            (stored.score, stored.band.as_str(), stored.mql)
        );
    }
    assert!(stored_ids.values().all(|&n| n == 1), "an event is stored twice");
    let stored_set: HashSet<&String> = stored_ids.keys().collect();
    assert_eq!(stored_set, unique);
    let (lead_count, event_count) = stores[0].counts().await.unwrap();
    assert_eq!((lead_count, event_count), (LEADS as u64, accepted.len() as u64));
    eprintln!(
        "concurrency: {} tasks x {BATCHES} batches of {BATCH} events on two instances: {} accepted, all scores recompute",
        TASKS,
        accepted.len()
    );

    // Throughput of 1,000-event batches over 200 leads: with the lead cache
    // warm (instance A) and cold (instance B reads the leads' events).
    let more: Vec<NewLead> = (0..200)
        .map(|i| NewLead {
            lead: Lead::new(format!("BULK-{i:03}")).with(StdField::Industry, "Travel"),
            owner: None,
        })
        .collect();
    stores[0]
        .write_leads(more, OnConflict::Refuse, now)
        .await
        .unwrap();
    for (round, store) in [0usize, 0, 0, 1, 0].into_iter().enumerate() {
        let events: Vec<Event> = (0..1000)
            .map(|n| Event {
                id: format!("bulk-{round}-{n}"),
                lead: format!("BULK-{:03}", (n * 13 + round) % 200),
                kind: if n.is_multiple_of(3) {
                    "email_clicked"
                } else {
                    "page_viewed"
                }
                .into(),
                occurred_at: t0().minus_days((n % 30) as f64),
                properties: BTreeMap::from([("path".to_owned(), "/pricing".to_owned())]),
            })
            .collect();
        let started = Instant::now();
        let statuses = stores[store].ingest(events, now).await.unwrap();
        assert!(statuses.iter().all(|s| *s == IngestStatus::Accepted));
        eprintln!(
            "ingest of 1,000 events (200 leads, instance {}): {:.1} ms",
            ["A", "B"][store],
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    for i in [0, 77, 199] {
        let id = format!("BULK-{i:03}");
        let record = stores[1].get_lead(&id).await.unwrap().unwrap();
        let events = stores[0].lead_events(&id).await.unwrap();
        let expected = model.score(&record.lead, &events, now);
        assert_eq!(record.score.unwrap().score, expected.score, "lead {id}");
    }

    // A model activated on A (then every lead rescored) while B ingests and
    // creates leads: afterwards every lead is scored by the new model.
    stores[0].put_model("sample", SAMPLE_MODEL, now).await.unwrap();
    let writer = {
        let store = stores[1].clone();
        tokio::spawn(async move {
            for round in 0..20 {
                let lead = NewLead {
                    lead: Lead::new(format!("LATE-{round:02}")).with(StdField::JobTitle, "CEO"),
                    owner: None,
                };
                store
                    .write_leads(vec![lead], OnConflict::Refuse, now)
                    .await
                    .unwrap();
                let events: Vec<Event> = (0..50)
                    .map(|n| Event {
                        id: format!("late-{round}-{n}"),
                        lead: format!("BULK-{:03}", (n * 31 + round) % 200),
                        kind: "email_clicked".into(),
                        occurred_at: t0().minus_days(1.0),
                        properties: BTreeMap::new(),
                    })
                    .collect();
                store.ingest(events, now).await.unwrap();
            }
        })
    };
    assert_eq!(stores[0].activate_model("sample", now, false).await.unwrap(), now);
    let rescored = stores[0].rescore_all(now, Arc::new(|_, _| {})).await.unwrap();
    writer.await.unwrap();
    assert!(rescored >= (LEADS + 200) as u64);
    let sample = ScoringModel::from_toml(SAMPLE_MODEL, "sample").unwrap();
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let query = LeadQuery {
            limit: 100,
            after,
            ..Default::default()
        };
        let (page, next) = stores[1].list_leads(&query).await.unwrap();
        all.extend(page);
        match next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    assert_eq!(all.len(), LEADS + 200 + 20);
    for record in all {
        let events = stores[0].lead_events(record.id()).await.unwrap();
        let expected = sample.score(&record.lead, &events, now);
        let stored = record.score.as_ref().expect("scored");
        assert_eq!(stored.model, "sample", "lead {}", record.id());
        assert_eq!(stored.score, expected.score, "lead {}", record.id());
    }
    let progress = stores[1]
        .get_model("sample")
        .await
        .unwrap()
        .unwrap()
        .rescore
        .unwrap();
    assert!(progress.finished);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_ingesting_the_same_leads_keep_every_score_right() {
    let Some(base) = database_url() else { return };
    let schema = format!(
        "pgc_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let client = admin(&base).await;
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    // Run in a task so the schema is dropped even when an assertion fails.
    let outcome = tokio::spawn(run(url)).await;
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
