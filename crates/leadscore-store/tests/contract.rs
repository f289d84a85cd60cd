//! The storage contract: every test runs on SQLite (a fresh file) and, when
//! `DATABASE_URL` is set, on PostgreSQL (a fresh schema per test).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use leadscore_core::{Event, Lead, ScoringModel, StdField, Timestamp};
use leadscore_store::*;

const SPEC_MODEL: &str = include_str!("../../leadscore-core/tests/fixtures/spec-model.toml");

/// A store under test and what keeps it alive (a temp dir, a schema name).
struct Fixture {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

async fn backends() -> Vec<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let mut out = vec![Fixture {
        store: open(&url).await.unwrap(),
        _dir: Some(dir),
    }];
    match std::env::var("DATABASE_URL") {
        Ok(base) if !base.is_empty() => out.push(Fixture {
            store: open(&testing::fresh_postgres_schema(&base, "ct").await.unwrap())
                .await
                .unwrap(),
            _dir: None,
        }),
        _ => eprintln!("PostgreSQL contract tests SKIPPED: DATABASE_URL is not set"),
    }
    out
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn t0() -> Timestamp {
    t("2026-11-01T00:00:00Z")
}

fn spec_lead(id: &str) -> Lead {
    Lead::new(id)
        .with(StdField::FirstName, "An")
        .with(StdField::LastName, "Nguyen")
        .with(StdField::JobTitle, "Founder & CEO")
        .with(StdField::Industry, "Travel")
        .with(StdField::Employees, "120")
        .with(StdField::Email, format!("{}@lotus-travel.vn", id.to_lowercase()))
        .with(StdField::Phone, "+84 912 345 678")
        .with(StdField::Company, "Lotus Travel")
}

fn ev(id: &str, lead: &str, kind: &str, days_before: f64, props: &[(&str, &str)]) -> Event {
    Event {
        id: id.into(),
        lead: lead.into(),
        kind: kind.into(),
        occurred_at: t0().minus_days(days_before),
        properties: props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// The spec's worked example events for one lead.
fn spec_events(lead: &str) -> Vec<Event> {
    vec![
        ev(&format!("{lead}-c30"), lead, "email_clicked", 30.0, &[]),
        ev(&format!("{lead}-c60"), lead, "email_clicked", 60.0, &[]),
        ev(
            &format!("{lead}-p10"),
            lead,
            "page_viewed",
            10.0,
            &[("path", "/pricing")],
        ),
        ev(
            &format!("{lead}-p40"),
            lead,
            "page_viewed",
            40.0,
            &[("path", "/pricing")],
        ),
        ev(&format!("{lead}-d2"), lead, "demo_requested", 2.0, &[]),
        ev(&format!("{lead}-d20"), lead, "demo_requested", 20.0, &[]),
    ]
}

async fn with_spec_model(s: &dyn Store) {
    assert_eq!(
        s.put_model("b2b-default", SPEC_MODEL, t0()).await.unwrap(),
        PutModel::Created
    );
    s.activate_model("b2b-default", t0(), false).await.unwrap();
}

/// The spec's model, active, and the spec's lead `L1`, created at t0.
async fn with_spec_lead(s: &dyn Store) {
    with_spec_model(s).await;
    s.write_leads(vec![new(spec_lead("L1"))], OnConflict::Refuse, t0())
        .await
        .unwrap();
}

fn new(lead: Lead) -> NewLead {
    NewLead { lead, owner: None }
}

/// The engine's score for the stored lead and events: what the stored score must equal.
async fn recomputed(s: &dyn Store, id: &str, as_of: Timestamp) -> leadscore_core::Score {
    let model = ScoringModel::from_toml(SPEC_MODEL, "spec").unwrap();
    let lead = s.get_lead(id).await.unwrap().unwrap().lead;
    let events = s.lead_events(id).await.unwrap();
    model.score(&lead, &events, as_of)
}

#[tokio::test]
async fn the_worked_example_scores_as_the_spec_says() {
    for f in backends().await {
        let s = &*f.store;
        with_spec_model(s).await;
        let w = s
            .write_leads(vec![new(spec_lead("L1"))], OnConflict::Refuse, t0())
            .await
            .unwrap();
        assert_eq!(w, vec![LeadWrite::Created("L1".into())], "{}", s.backend());
        let statuses = s.ingest(spec_events("L1"), t0()).await.unwrap();
        assert!(
            statuses.iter().all(|st| *st == IngestStatus::Accepted),
            "{statuses:?}"
        );
        let score = s.get_lead("L1").await.unwrap().unwrap().score.unwrap();
        assert_eq!(
            (score.score, score.fit, score.engagement),
            (45.75, 23.0, 22.75),
            "{}",
            s.backend()
        );
        assert_eq!(
            (score.band.as_str(), score.grade.as_str(), score.mql),
            ("warm", "B", false)
        );
        assert_eq!(score.model, "b2b-default");
        let rules: Vec<(&str, f64, Option<u32>)> = score
            .breakdown
            .iter()
            .map(|b| (b.rule.as_str(), b.points, b.events))
            .collect();
        assert_eq!(
            rules,
            vec![
                ("demo_or_trial", 15.0, Some(1)),
                ("decision_maker", 10.0, None),
                ("target_industry", 8.0, None),
                ("corporate_email", 5.0, None),
                ("pricing_page", 4.0, Some(1)),
                ("email_click", 3.75, Some(2)),
            ]
        );
    }
}

#[tokio::test]
async fn ingest_is_idempotent_and_rejects_unknown_leads() {
    for f in backends().await {
        let s = &*f.store;
        with_spec_lead(s).await;
        let mut batch = spec_events("L1");
        batch.push(ev("L1-c30", "L1", "email_clicked", 1.0, &[])); // same id, later in the batch
        batch.push(ev("x1", "NOPE", "email_clicked", 1.0, &[]));
        let st = s.ingest(batch, t0()).await.unwrap();
        assert_eq!(st[..6], vec![IngestStatus::Accepted; 6][..], "{}", s.backend());
        assert_eq!(st[6], IngestStatus::Duplicate);
        assert!(matches!(&st[7], IngestStatus::Rejected(r) if r.contains("unknown lead")));
        let again = s.ingest(spec_events("L1"), t0()).await.unwrap();
        assert!(again.iter().all(|x| *x == IngestStatus::Duplicate));
        assert_eq!(s.lead_events("L1").await.unwrap().len(), 6);
        assert_eq!(s.counts().await.unwrap(), (1, 6));
        let stored = s.get_lead("L1").await.unwrap().unwrap().score.unwrap();
        assert_eq!(stored.score, recomputed(s, "L1", t0()).await.score);
    }
}

#[tokio::test]
async fn history_records_each_change_with_its_cause() {
    for f in backends().await {
        let s = &*f.store;
        with_spec_lead(s).await;
        s.ingest(vec![ev("d", "L1", "demo_requested", 1.0, &[])], t0())
            .await
            .unwrap();
        // An event no rule counts changes nothing: no history entry.
        s.ingest(vec![ev("o", "L1", "webinar_watched", 1.0, &[])], t0())
            .await
            .unwrap();
        let patch = LeadPatch {
            fields: vec![(StdField::Employees, Some("900".into()))],
            ..LeadPatch::default()
        };
        let after = s.update_lead("L1", patch, t0()).await.unwrap().unwrap();
        assert_eq!(after.score.as_ref().unwrap().score, 45.0, "{}", s.backend());
        let h = s.history("L1").await.unwrap();
        let causes: Vec<_> = h.iter().map(|e| (e.score, e.cause.clone())).collect();
        assert_eq!(
            causes,
            vec![
                (23.0, Cause::Created),
                (
                    38.0,
                    Cause::Events {
                        events: vec!["d".into()]
                    }
                ),
                (45.0, Cause::LeadEdited),
            ],
            "{}",
            s.backend()
        );
        assert_eq!(h[1].band, "warm");
    }
}

/// A rescoring because time passed never sets a newer score back: one
/// decided on an earlier read (or by an instance whose clock is behind)
/// leaves a lead scored as of a later moment alone, events and all.
#[tokio::test]
async fn time_passing_never_sets_a_newer_score_back() {
    for f in backends().await {
        let s = &*f.store;
        with_spec_lead(s).await;
        let later = Timestamp::from_micros(t0().as_micros() + 3_600_000_000);
        // A demo half an hour after t0, ingested an hour after.
        let mut demo = ev("d", "L1", "demo_requested", 0.0, &[]);
        demo.occurred_at = Timestamp::from_micros(t0().as_micros() + 1_800_000_000);
        s.ingest(vec![demo], later).await.unwrap();
        let before = s.get_lead("L1").await.unwrap().unwrap().score.unwrap();
        assert_eq!(before.engagement, 15.0, "{}", s.backend());
        s.refresh_scores(&["L1".to_owned()], t0()).await.unwrap();
        let after = s.get_lead("L1").await.unwrap().unwrap().score.unwrap();
        assert_eq!(after, before, "{}", s.backend());
        // As of a later moment it is rescored as usual.
        let much_later = Timestamp::from_micros(later.as_micros() + 60 * 86_400_000_000);
        s.refresh_scores(&["L1".to_owned()], much_later).await.unwrap();
        let aged = s.get_lead("L1").await.unwrap().unwrap().score.unwrap();
        assert_eq!(aged.as_of, much_later.to_string(), "{}", s.backend());
        let expected = recomputed(s, "L1", much_later).await;
        assert_eq!(aged.score, expected.score, "{}", s.backend());
    }
}

/// When time passing rescores a lead between a model's activation and the
/// activation's own rescoring, the lead moves to the new model there, and its
/// history names the activation as the cause, not time.
#[tokio::test]
async fn a_model_change_found_by_time_passing_is_named_an_activation() {
    for f in backends().await {
        let s = &*f.store;
        with_spec_lead(s).await;
        let before = s.get_lead("L1").await.unwrap().unwrap().score.unwrap();
        let second = SPEC_MODEL
            .replacen("name = \"b2b-default\"", "name = \"second\"", 1)
            .replacen("points = 10", "points = 12", 1);
        s.put_model("second", &second, t0()).await.unwrap();
        let later = t("2026-11-02T00:00:00Z");
        s.activate_model("second", later, false).await.unwrap();
        s.refresh_scores(&["L1".to_owned()], later).await.unwrap();
        let after = s.get_lead("L1").await.unwrap().unwrap().score.unwrap();
        assert_eq!(after.model, "second", "{}", s.backend());
        assert_ne!(after.score, before.score, "{}", s.backend());
        let cause = |h: Vec<leadscore_store::HistoryEntry>| h.last().unwrap().cause.clone();
        let activated = Cause::ModelActivated {
            model: "second".into(),
        };
        assert_eq!(
            cause(s.history("L1").await.unwrap()),
            activated,
            "{}",
            s.backend()
        );
        // The activation's rescoring then finds the lead done.
        s.rescore_all(later, Arc::new(|_, _| {})).await.unwrap();
        assert_eq!(s.history("L1").await.unwrap().len(), 2, "{}", s.backend());
        // Later, with the same model, time passing is time passing.
        s.ingest(vec![ev("c", "L1", "email_clicked", 0.0, &[])], later)
            .await
            .unwrap();
        let much_later = Timestamp::from_micros(later.as_micros() + 60 * 86_400_000_000);
        s.refresh_scores(&["L1".to_owned()], much_later).await.unwrap();
        assert_eq!(
            cause(s.history("L1").await.unwrap()),
            Cause::TimePassed,
            "{}",
            s.backend()
        );
    }
}

#[tokio::test]
async fn e_mails_are_unique_and_upsert_merges() {
    for f in backends().await {
        let s = &*f.store;
        with_spec_lead(s).await;
        let dup = Lead::default()
            .with(StdField::Email, " L1@Lotus-Travel.vn ")
            .with(StdField::Industry, "Software")
            .with_attribute("plan", "pro");
        let w = s
            .write_leads(vec![new(dup.clone())], OnConflict::Refuse, t0())
            .await
            .unwrap();
        assert_eq!(
            w,
            vec![LeadWrite::Conflict {
                existing: "L1".into(),
                by: ConflictKey::Email
            }],
            "{}",
            s.backend()
        );
        let same_id = s
            .write_leads(vec![new(Lead::new("L1"))], OnConflict::Refuse, t0())
            .await
            .unwrap();
        assert!(matches!(
            &same_id[0],
            LeadWrite::Conflict {
                by: ConflictKey::Id,
                ..
            }
        ));
        let w = s
            .write_leads(vec![new(dup)], OnConflict::Update, t0())
            .await
            .unwrap();
        assert_eq!(w, vec![LeadWrite::Updated("L1".into())]);
        let l = s.get_lead("L1").await.unwrap().unwrap();
        assert_eq!(l.lead.get(StdField::Industry), Some("Software"));
        assert_eq!(l.lead.get(StdField::Company), Some("Lotus Travel"), "kept");
        assert_eq!(l.lead.attribute("plan"), Some("pro"));
        // A patch may not take another lead's e-mail.
        s.write_leads(vec![new(spec_lead("L2"))], OnConflict::Refuse, t0())
            .await
            .unwrap();
        let patch = LeadPatch {
            fields: vec![(StdField::Email, Some("l1@lotus-travel.vn".into()))],
            ..LeadPatch::default()
        };
        let err = s.update_lead("L2", patch, t0()).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(ref id) if id == "L1"), "{err}");
        assert!(
            s.update_lead("nope", LeadPatch::default(), t0())
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn leads_without_an_id_get_one() {
    for f in backends().await {
        let s = &*f.store;
        let w = s
            .write_leads(
                vec![new(Lead::default().with(StdField::Company, "X"))],
                OnConflict::Refuse,
                t0(),
            )
            .await
            .unwrap();
        let LeadWrite::Created(id) = &w[0] else {
            panic!("{w:?}")
        };
        assert!(!id.is_empty());
        let l = s.get_lead(id).await.unwrap().unwrap();
        assert_eq!(l.lead.get(StdField::Company), Some("X"));
        assert!(l.score.is_none(), "no model is active yet");
    }
}

/// Leads L00..L29, unscored (no model active), with one to six of the
/// spec's events each.
async fn thirty_leads_with_events(s: &dyn Store) {
    let leads: Vec<NewLead> = (0..30).map(|i| new(spec_lead(&format!("L{i:02}")))).collect();
    s.write_leads(leads, OnConflict::Refuse, t0()).await.unwrap();
    for i in 0..30 {
        s.ingest(spec_events(&format!("L{i:02}"))[..(i % 6) + 1].to_vec(), t0())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn activating_a_model_rescores_every_lead() {
    for f in backends().await {
        let s = &*f.store;
        thirty_leads_with_events(s).await;
        assert!(s.get_lead("L00").await.unwrap().unwrap().score.is_none());
        assert_eq!(
            s.put_model("b2b-default", SPEC_MODEL, t0()).await.unwrap(),
            PutModel::Created
        );
        assert_eq!(
            s.put_model("b2b-default", SPEC_MODEL, t0()).await.unwrap(),
            PutModel::Unchanged
        );
        assert_eq!(
            s.put_model("b2b-default", "name = 'x'", t0()).await.unwrap(),
            PutModel::NameTaken
        );
        assert!(matches!(
            s.activate_model("nope", t0(), false).await,
            Err(StoreError::NotFound(_))
        ));
        s.activate_model("b2b-default", t0(), false).await.unwrap();
        assert_eq!(
            s.active_model().await.unwrap().unwrap().members[0].name.as_ref(),
            "b2b-default"
        );
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let n = s
            .rescore_all(t0(), Arc::new(move |d, t| log.lock().unwrap().push((d, t))))
            .await
            .unwrap();
        assert_eq!(n, 30, "{}", s.backend());
        assert_eq!(seen.lock().unwrap().last(), Some(&(30, 30)));
        for i in 0..30 {
            let id = format!("L{i:02}");
            let stored = s.get_lead(&id).await.unwrap().unwrap().score.unwrap();
            let fresh = recomputed(s, &id, t0()).await;
            assert_eq!(
                (stored.score, stored.mql),
                (fresh.score, fresh.mql),
                "{id} on {}",
                s.backend()
            );
        }
        let m = s.get_model("b2b-default").await.unwrap().unwrap();
        assert!(m.active);
        assert_eq!(
            m.rescore.unwrap(),
            RescoreProgress {
                done: 30,
                total: 30,
                finished: true
            }
        );
        assert_eq!(s.list_models().await.unwrap().len(), 1);
        let h = s.history("L05").await.unwrap();
        assert_eq!(
            h.last().unwrap().cause,
            Cause::ModelActivated {
                model: "b2b-default".into()
            }
        );
    }
}

/// A rescoring that a later activation cut off (its task stopped late, or
/// it runs in another instance on the same database) neither goes on nor
/// records its progress on the later activation's models: a client polling
/// the later one must never see it finished before its own rescoring is.
#[tokio::test]
async fn a_rescoring_cut_off_by_a_later_activation_leaves_the_later_one_alone() {
    for f in backends().await {
        let s = &*f.store;
        thirty_leads_with_events(s).await;
        let later = t("2026-11-01T01:00:00Z");
        s.put_model("first", SPEC_MODEL, t0()).await.unwrap();
        s.put_model("second", SPEC_MODEL, t0()).await.unwrap();
        s.activate_model("first", t0(), false).await.unwrap();
        s.activate_model("second", later, false).await.unwrap();
        let backend = s.backend();
        // The first activation's rescoring, after the second activation.
        let n = s.rescore_all(t0(), Arc::new(|_, _| {})).await.unwrap();
        assert_eq!(n, 0, "{backend}");
        assert_eq!(
            s.get_model("second").await.unwrap().unwrap().rescore,
            None,
            "{backend}"
        );
        assert!(
            s.get_lead("L03").await.unwrap().unwrap().score.is_none(),
            "{backend}"
        );
        let n = s.rescore_all(later, Arc::new(|_, _| {})).await.unwrap();
        assert_eq!(n, 30, "{backend}");
        assert_eq!(
            s.get_model("second").await.unwrap().unwrap().rescore,
            Some(RescoreProgress {
                done: 30,
                total: 30,
                finished: true
            }),
            "{backend}"
        );
        let score = s.get_lead("L03").await.unwrap().unwrap().score.unwrap();
        assert_eq!(&*score.model, "second", "{backend}");
        // An activation by a clock behind the last one's (set back, or
        // another instance's) still comes after it, and is rescored.
        s.put_model("third", SPEC_MODEL, t0()).await.unwrap();
        let at = s.activate_model("third", t0(), true).await.unwrap();
        assert!(at > later, "{backend}");
        assert_eq!(
            s.rescore_all(at, Arc::new(|_, _| {})).await.unwrap(),
            30,
            "{backend}"
        );
        for name in ["second", "third"] {
            let m = s.get_model(name).await.unwrap().unwrap();
            assert!(m.rescore.unwrap().finished, "{name} on {backend}");
        }
        // Re-activating the first model starts another rescoring; the
        // second's late record changes nothing on it either.
        let third = t("2026-11-01T02:00:00Z");
        s.activate_model("first", third, false).await.unwrap();
        assert_eq!(
            s.rescore_all(later, Arc::new(|_, _| {})).await.unwrap(),
            0,
            "{backend}"
        );
        assert_eq!(
            s.get_model("first").await.unwrap().unwrap().rescore,
            None,
            "{backend}"
        );
        assert_eq!(
            s.rescore_all(third, Arc::new(|_, _| {})).await.unwrap(),
            30,
            "{backend}"
        );
        assert!(
            s.get_model("first")
                .await
                .unwrap()
                .unwrap()
                .rescore
                .unwrap()
                .finished,
            "{backend}"
        );
    }
}

/// A rescoring run again for the same activation (resumed after a stop)
/// leaves every lead it already rescored as it is, also when the model was
/// active before (re-activated: its leads were scored by it, as of before).
#[tokio::test]
async fn a_rescoring_run_again_changes_nothing() {
    for f in backends().await {
        let s = &*f.store;
        let backend = s.backend();
        thirty_leads_with_events(s).await;
        s.put_model("m", SPEC_MODEL, t0()).await.unwrap();
        s.activate_model("m", t0(), false).await.unwrap();
        assert_eq!(s.rescore_all(t0(), Arc::new(|_, _| {})).await.unwrap(), 30);
        let again = t("2026-11-01T06:00:00Z");
        s.activate_model("m", again, false).await.unwrap();
        assert_eq!(s.rescore_all(again, Arc::new(|_, _| {})).await.unwrap(), 30);
        let mut before = Vec::new();
        for i in 0..30 {
            let l = s.get_lead(&format!("L{i:02}")).await.unwrap().unwrap();
            assert_eq!(l.score.as_ref().unwrap().as_of, again.to_string(), "{backend}");
            before.push(l.version);
        }
        s.rescore_all(again, Arc::new(|_, _| {})).await.unwrap();
        for (i, version) in before.into_iter().enumerate() {
            let l = s.get_lead(&format!("L{i:02}")).await.unwrap().unwrap();
            assert_eq!(l.version, version, "L{i:02} on {backend}");
        }
    }
}

/// A store opened afresh knows nothing of its leads: the rescoring of an
/// activation reads them (and their events), which must give each lead
/// exactly the engine's score, leads without events included. With most
/// leads unknown, the writer reads every lead and event in one pass first;
/// with most known, it reads the missing ones a run at a time.
#[tokio::test]
async fn a_fresh_sqlite_store_rescores_every_lead_from_what_it_reads() {
    fresh_store_rescores(0).await;
}

#[tokio::test]
async fn a_sqlite_store_that_knows_most_leads_reads_the_rest_when_it_rescores() {
    fresh_store_rescores(100).await;
}

/// Opens the store again and touches the first `known` leads before the
/// activation, so that the writer knows them.
async fn fresh_store_rescores(known: usize) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let ids: Vec<String> = (0..150).map(|i| format!("C{i:03}")).collect();
    store_leads_and_events(&url, &ids).await;
    let s = open(&url).await.unwrap();
    let touched: Vec<Event> = ids[..known]
        .iter()
        .map(|id| {
            ev(
                &format!("{id}-again"),
                id,
                "page_viewed",
                1.0,
                &[("path", "/pricing")],
            )
        })
        .collect();
    s.ingest(touched, t0()).await.unwrap();
    activate_second_and_check(&*s, &ids).await;
    for id in &ids {
        assert_eq!(
            s.history(id).await.unwrap().last().unwrap().cause,
            Cause::ModelActivated {
                model: "second".into()
            },
            "{id}"
        );
    }
}

/// Stores the spec's model, these leads, and some of the spec's events for
/// two leads in three (out of lead order); the store is closed afterwards.
/// Returns how many events were stored.
async fn store_leads_and_events(url: &str, ids: &[String]) -> usize {
    let s = open(url).await.unwrap();
    with_spec_model(&*s).await;
    let leads: Vec<NewLead> = ids.iter().map(|id| new(spec_lead(id))).collect();
    s.write_leads(leads, OnConflict::Refuse, t0()).await.unwrap();
    let mut events = Vec::new();
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 3 != 0) {
        events.extend_from_slice(&spec_events(id)[..(i % 6) + 1]);
    }
    events.reverse(); // stored out of lead order
    for batch in events.chunks(97) {
        s.ingest(batch.to_vec(), t0()).await.unwrap();
    }
    events.len()
}

/// After a start, `warm_up` reads every lead and event into the SQLite
/// writer's cache in one pass; the scores of the writes that follow come
/// from what it read, and must be the engine's on the stored lead and events.
#[tokio::test]
async fn a_warmed_up_sqlite_store_scores_new_events_from_what_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let ids: Vec<String> = (0..150).map(|i| format!("W{i:03}")).collect();
    let stored = store_leads_and_events(&url, &ids).await;
    let s = open(&url).await.unwrap();
    assert_eq!(
        s.warm_up().await.unwrap(),
        Some((ids.len() as u64, stored as u64))
    );
    let now = t("2026-11-01T12:00:00Z");
    let more: Vec<Event> = ids
        .iter()
        .map(|id| ev(&format!("{id}-warm"), id, "email_clicked", 0.25, &[]))
        .collect();
    s.ingest(more, now).await.unwrap();
    for id in &ids {
        let score = s.get_lead(id).await.unwrap().unwrap().score.unwrap();
        let fresh = recomputed(&*s, id, now).await;
        assert_eq!(
            (score.score, score.fit, score.engagement, score.mql),
            (fresh.score, fresh.fit, fresh.engagement, fresh.mql),
            "{id}"
        );
    }
}

/// The SQLite writer writes a lead's next score from what it knows of the
/// row it last wrote, without reading it again, until someone else commits
/// to the file (another process: here a second store on the same file, as
/// a second server or the CLI would be). Then it reads again: each store's
/// scores must be the engine's on everything stored, whoever stored it, and
/// an activation's rescoring too.
#[tokio::test]
async fn two_sqlite_stores_on_one_file_score_what_the_other_stored() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let ids: Vec<String> = (0..30).map(|i| format!("T{i:02}")).collect();
    store_leads_and_events(&url, &ids).await;
    let (a, b) = (open(&url).await.unwrap(), open(&url).await.unwrap());
    a.warm_up().await.unwrap();
    b.warm_up().await.unwrap();
    let now = t("2026-11-01T12:00:00Z");
    let check = async |s: &dyn Store, round: &str| {
        for id in &ids {
            let score = s.get_lead(id).await.unwrap().unwrap().score.unwrap();
            let fresh = recomputed(s, id, now).await;
            assert_eq!(
                (score.score, score.engagement, score.mql),
                (fresh.score, fresh.engagement, fresh.mql),
                "{id} after {round}"
            );
        }
    };
    for (round, kind) in ["email_clicked", "demo_requested", "page_viewed"]
        .iter()
        .enumerate()
    {
        // Each writes every lead in turn, from what it knew before the other wrote.
        for (n, s) in [&a, &b].into_iter().enumerate() {
            let events: Vec<Event> = ids
                .iter()
                .map(|id| {
                    ev(
                        &format!("{id}-{round}-{n}"),
                        id,
                        kind,
                        0.5,
                        &[("path", "/pricing")],
                    )
                })
                .collect();
            let statuses = s.ingest(events, now).await.unwrap();
            assert!(statuses.iter().all(|st| *st == IngestStatus::Accepted));
        }
        check(&*a, kind).await;
    }
    // An edit by one, then an event by the other.
    let mut patch = LeadPatch::default();
    patch.fields.push((StdField::JobTitle, Some("Intern".into())));
    b.update_lead("T04", patch, now).await.unwrap().unwrap();
    a.ingest(vec![ev("T04-after-edit", "T04", "email_clicked", 0.1, &[])], now)
        .await
        .unwrap();
    check(&*b, "an edit").await;
    // The other store's rescoring, after these writes.
    activate_second_and_check(&*b, &ids).await;
    a.ingest(
        vec![ev("T07-last", "T07", "email_clicked", 0.1, &[])],
        t("2026-11-02T00:00:01Z"),
    )
    .await
    .unwrap();
    let score = a.get_lead("T07").await.unwrap().unwrap().score.unwrap();
    assert_eq!(&*score.model, "second");
}

/// Activates a second model (the spec's with one rule at 12 points) a day
/// after `t0`, rescores every lead and checks each stored score against the
/// engine's on the stored lead and events.
async fn activate_second_and_check<I: AsRef<str>>(s: &dyn Store, ids: &[I]) {
    let second = SPEC_MODEL
        .replacen("name = \"b2b-default\"", "name = \"second\"", 1)
        .replacen("points = 10", "points = 12", 1);
    assert_eq!(
        s.put_model("second", &second, t0()).await.unwrap(),
        PutModel::Created
    );
    let later = t("2026-11-02T00:00:00Z");
    s.activate_model("second", later, false).await.unwrap();
    assert_eq!(
        s.rescore_all(later, Arc::new(|_, _| {})).await.unwrap(),
        ids.len() as u64
    );
    let engine = ScoringModel::from_toml(&second, "second").unwrap();
    for id in ids.iter().map(AsRef::as_ref) {
        let record = s.get_lead(id).await.unwrap().unwrap();
        let stored = record.score.unwrap();
        let fresh = engine.score(&record.lead, &s.lead_events(id).await.unwrap(), later);
        assert_eq!(stored.model, "second", "{id}");
        assert_eq!(
            (stored.score, stored.fit, stored.mql),
            (fresh.score, fresh.fit, fresh.mql),
            "{id}"
        );
    }
}

#[tokio::test]
async fn listing_filters_sorts_and_pages() {
    for f in backends().await {
        let s = &*f.store;
        with_spec_model(s).await;
        let mut leads = Vec::new();
        for i in 0..25 {
            let mut l = spec_lead(&format!("L{i:02}"));
            if i % 2 == 0 {
                l.set(StdField::JobTitle, "Intern");
            }
            if i == 7 {
                l.set(StdField::Company, "Blue Ocean Ltd");
            }
            leads.push(NewLead {
                lead: l,
                owner: Some(if i % 3 == 0 { "mai" } else { "tuan" }.into()),
            });
        }
        s.write_leads(leads, OnConflict::Refuse, t0()).await.unwrap();
        for i in 0..10 {
            s.ingest(spec_events(&format!("L{i:02}")), t0()).await.unwrap();
        }
        // Every lead exactly once, best score first, ties by id.
        let mut all = Vec::new();
        let mut q = LeadQuery {
            limit: 4,
            ..LeadQuery::default()
        };
        loop {
            let (page, next) = s.list_leads(&q).await.unwrap();
            all.extend(
                page.into_iter()
                    .map(|l| (l.score.unwrap().score, l.lead.id().to_owned())),
            );
            match next {
                Some(c) => q.after = Some(c),
                None => break,
            }
        }
        assert_eq!(all.len(), 25, "{}", s.backend());
        let mut sorted = all.clone();
        sorted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        assert_eq!(all, sorted);

        let count = |q: LeadQuery| async move {
            s.list_leads(&LeadQuery { limit: 100, ..q })
                .await
                .unwrap()
                .0
                .len()
        };
        let q = LeadQuery::default;
        for (query, expected) in [
            (
                LeadQuery {
                    owner: Some("mai".into()),
                    ..q()
                },
                9,
            ),
            (
                LeadQuery {
                    text: Some("blue OCEAN".into()),
                    ..q()
                },
                1,
            ),
            (
                LeadQuery {
                    text: Some("%".into()),
                    ..q()
                },
                0,
            ),
            (
                LeadQuery {
                    band: Some("warm".into()),
                    ..q()
                },
                10,
            ),
            (
                LeadQuery {
                    grade: Some("B".into()),
                    ..q()
                },
                12,
            ),
            (
                LeadQuery {
                    mql: Some(true),
                    ..q()
                },
                0,
            ),
        ] {
            assert_eq!(
                count(query.clone()).await,
                expected,
                "{query:?} on {}",
                s.backend()
            );
        }
        let newest = s
            .list_leads(&LeadQuery {
                order: LeadOrder::Created,
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .0;
        assert_eq!(newest.len(), 25);
    }
}

#[tokio::test]
async fn deleting_a_lead_erases_its_events_and_history() {
    for f in backends().await {
        let s = &*f.store;
        with_spec_model(s).await;
        s.write_leads(
            vec![new(spec_lead("L1")), new(spec_lead("L2"))],
            OnConflict::Refuse,
            t0(),
        )
        .await
        .unwrap();
        s.ingest(spec_events("L1"), t0()).await.unwrap();
        s.ingest(spec_events("L2"), t0()).await.unwrap();
        assert!(s.delete_lead("L1").await.unwrap());
        assert!(!s.delete_lead("L1").await.unwrap());
        assert!(s.get_lead("L1").await.unwrap().is_none());
        assert!(s.lead_events("L1").await.unwrap().is_empty());
        assert!(s.history("L1").await.unwrap().is_empty());
        assert_eq!(s.counts().await.unwrap(), (1, 6), "{}", s.backend());
        let st = s.ingest(spec_events("L1"), t0()).await.unwrap();
        assert!(matches!(&st[0], IngestStatus::Rejected(_)));
        // The e-mail is free again.
        let w = s
            .write_leads(vec![new(spec_lead("L1"))], OnConflict::Refuse, t0())
            .await
            .unwrap();
        assert_eq!(w, vec![LeadWrite::Created("L1".into())]);
    }
}

#[tokio::test]
async fn tokens_are_found_by_hash() {
    for f in backends().await {
        let s = &*f.store;
        let tok = TokenRecord {
            hash: "ab".repeat(32),
            role: "rep".into(),
            user: Some("mai".into()),
            created_at: t0(),
        };
        s.create_token(tok.clone()).await.unwrap();
        assert_eq!(s.find_token(&tok.hash).await.unwrap(), Some(tok));
        assert_eq!(s.find_token("cd").await.unwrap(), None);
    }
}

#[tokio::test]
async fn a_reopened_database_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    {
        let s = open(&url).await.unwrap();
        with_spec_model(&*s).await;
        s.write_leads(vec![new(spec_lead("L1"))], OnConflict::Refuse, t0())
            .await
            .unwrap();
        s.ingest(spec_events("L1"), t0()).await.unwrap();
    }
    let s = open(&url).await.unwrap();
    assert_eq!(
        s.get_lead("L1").await.unwrap().unwrap().score.unwrap().score,
        45.75
    );
    // Rescoring after a restart reads the events back (the cache is empty).
    s.ingest(vec![ev("late", "L1", "email_clicked", 0.0, &[])], t0())
        .await
        .unwrap();
    let stored = s.get_lead("L1").await.unwrap().unwrap().score.unwrap();
    assert_eq!(stored.score, recomputed(&*s, "L1", t0()).await.score);
    assert_eq!(stored.score, 50.75);
}

/// Automation's storage: saves are compare-and-set on the state, the lead's
/// version and the workflow's revision; a rep's last slot goes to one save
/// only; deliveries are claimed with a lease and a late answer is not
/// recorded over a newer claim.
#[tokio::test]
async fn automation_saves_are_guarded_and_deliveries_leased() {
    use leadscore_store::automation::*;
    for f in backends().await {
        let s = &*f.store;
        let a = s.automation();
        with_spec_model(s).await;
        s.write_leads(
            vec![new(spec_lead("A1")), new(spec_lead("A2"))],
            OnConflict::Refuse,
            t0(),
        )
        .await
        .unwrap();
        let version = s.get_lead("A1").await.unwrap().unwrap().version;
        let save = |lead: &str, rev: i64, version: i64, loads: Vec<LoadChange>| AutomationSave {
            lead: lead.into(),
            rev,
            record: AutomationRecord {
                lead_version: version,
                doc: serde_json::json!({"n": rev}),
                counted_owner: Some("an".into()),
                ..Default::default()
            },
            owner: Some(Some("an".into())),
            loads,
            now: t0(),
            ..Default::default()
        };
        let take = |cap| {
            vec![LoadChange {
                rep: "an".into(),
                delta: 1,
                capacity: Some(cap),
            }]
        };
        // A stale lead version is refused, and so is a stale revision.
        assert_eq!(
            a.save(save("A1", 0, version - 1, vec![])).await.unwrap(),
            Saved::Changed,
            "{}",
            s.backend()
        );
        assert_eq!(
            a.save(save("A1", 0, version, take(1))).await.unwrap(),
            Saved::Done
        );
        // A1 is seen as it is; A2 is not.
        assert_eq!(
            a.unseen_page("", 1000).await.unwrap(),
            (vec!["A2".to_string()], None)
        );
        assert_eq!(a.unseen("", 10).await.unwrap(), ["A2"]);
        assert_eq!(
            a.save(save("A1", 0, version, vec![])).await.unwrap(),
            Saved::Changed
        );
        assert_eq!(
            s.get_lead("A1").await.unwrap().unwrap().owner.as_deref(),
            Some("an")
        );
        // The rep is full at 1: the next lead is refused as a whole.
        let v2 = s.get_lead("A2").await.unwrap().unwrap().version;
        assert_eq!(
            a.save(save("A2", 0, v2, take(1))).await.unwrap(),
            Saved::Full("an".into())
        );
        assert_eq!(
            s.get_lead("A2").await.unwrap().unwrap().owner,
            None,
            "nothing of a refused save stays"
        );
        assert!(a.states(&["A2".into()]).await.unwrap().is_empty());
        assert_eq!(a.loads().await.unwrap()[0].open_leads, 1);
        // The count is recomputed from the states.
        a.recount_loads(&["an".into(), "binh".into()]).await.unwrap();
        let loads = a.loads().await.unwrap();
        assert_eq!(
            loads
                .iter()
                .map(|l| (l.rep.as_str(), l.open_leads))
                .collect::<Vec<_>>(),
            [("an", 1), ("binh", 0)]
        );

        // Deliveries: one per subscription of the happening's type.
        for (id, events) in [
            ("w1", vec!["lead.mql".to_string()]),
            ("w2", vec!["*".to_string()]),
            ("w3", vec!["task.due".to_string()]),
        ] {
            a.create_webhook(&Webhook {
                id: id.into(),
                url: "http://127.0.0.1:9/".into(),
                events,
                secret: "x".repeat(16),
                created_at: t0(),
                created_by: None,
                active: true,
            })
            .await
            .unwrap();
        }
        let h = Happening {
            id: "h1".into(),
            kind: "lead.mql".into(),
            lead: Some("A1".into()),
            occurred_at: t0(),
            payload: serde_json::json!({"type": "lead.mql"}),
        };
        assert!(a.emit(std::slice::from_ref(&h), "k", 0, 1).await.unwrap());
        assert!(
            !a.emit(&[h], "k", 0, 1).await.unwrap(),
            "a moved watermark refuses the second"
        );
        let lease = Timestamp::from_micros(t0().as_micros() + 60_000_000);
        let claimed = a.claim(t0(), lease, 10).await.unwrap();
        let mut ids: Vec<&str> = claimed.iter().map(|c| c.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["h1.w1", "h1.w2"], "{}", s.backend());
        assert!(
            a.claim(t0(), lease, 10).await.unwrap().is_empty(),
            "claimed ones are set aside"
        );
        // A redelivery by hand, then the first try's late answer: ignored.
        assert!(a.redeliver("w1", "h1.w1", t0()).await.unwrap());
        let attempt = |c: &Claimed, ok| Attempt {
            delivery: c.id.clone(),
            at: t0(),
            status: Some(if ok { 200 } else { 500 }),
            error: None,
            millis: 3,
            ok,
            retry_at: (!ok).then_some(lease),
            lease: c.lease,
        };
        let w1 = claimed.iter().find(|c| c.id == "h1.w1").unwrap();
        let w2 = claimed.iter().find(|c| c.id == "h1.w2").unwrap();
        a.record(&[attempt(w1, false), attempt(w2, true)]).await.unwrap();
        let (d1, tries1) = a.delivery("h1.w1").await.unwrap().unwrap();
        assert_eq!(
            (d1.state.as_str(), d1.attempts, tries1.len()),
            ("pending", 0, 0),
            "{d1:?}"
        );
        let (d2, tries2) = a.delivery("h1.w2").await.unwrap().unwrap();
        assert_eq!(
            (d2.state.as_str(), d2.attempts, tries2.len()),
            ("delivered", 1, 1),
            "{d2:?}"
        );
        // Erasing the lead erases its deliveries and frees nothing twice.
        assert!(s.delete_lead("A1").await.unwrap());
        assert!(a.delivery("h1.w2").await.unwrap().is_none());
        a.recount_loads(&["an".into()]).await.unwrap();
        assert_eq!(a.loads().await.unwrap()[0].open_leads, 0);
    }
}

/// The automation engine's bulk path: leads and their events read for many
/// leads at once agree with the one-lead reads, and saves made in one
/// transaction each go through or not as if alone (a refused one leaves
/// nothing behind, even what it did before its refusing guard).
#[tokio::test]
async fn bulk_reads_and_saves_act_as_one_lead_at_a_time() {
    use leadscore_store::automation::*;
    for f in backends().await {
        let s = &*f.store;
        let backend = s.backend();
        let a = s.automation();
        with_spec_model(s).await;
        let ids = ["B1", "B2", "B3", "B4"];
        s.write_leads(
            ids.iter().map(|id| new(spec_lead(id))).collect(),
            OnConflict::Refuse,
            t0(),
        )
        .await
        .unwrap();
        let mut events = spec_events("B1");
        events.extend(spec_events("B3"));
        s.ingest(events, t0()).await.unwrap();

        let mut asked: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        asked.push("nobody".into());
        let leads = s.get_leads(&asked).await.unwrap();
        let lead_events = s.leads_events(&asked).await.unwrap();
        assert_eq!(leads.len(), 4, "{backend}: the missing lead is left out");
        assert!(!lead_events.contains_key("B2"), "{backend}: no events, no entry");
        for id in ids {
            let one = s.get_lead(id).await.unwrap().unwrap();
            assert_eq!(leads[id].lead, one.lead, "{backend} {id}");
            assert_eq!(leads[id].version, one.version, "{backend} {id}");
            let evs = s.lead_events(id).await.unwrap();
            let ids_of = |v: &[Event]| v.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
            assert_eq!(
                lead_events.get(id).map(|v| ids_of(v)).unwrap_or_default(),
                ids_of(&evs),
                "{backend} {id}: the same events in the same order"
            );
        }

        let save = |id: &str, version: i64, loads: Vec<LoadChange>| AutomationSave {
            lead: id.into(),
            rev: 0,
            record: AutomationRecord {
                lead_version: version,
                doc: serde_json::json!({"lead": id}),
                ..Default::default()
            },
            loads,
            now: t0(),
            ..Default::default()
        };
        let v = |id: &str| leads[id].version;
        // B2's lead moved on; B3 asks for a slot its rep does not have (its
        // state row is written before the refusing guard, and must go).
        let no_room = vec![LoadChange {
            rep: "an".into(),
            delta: 1,
            capacity: Some(0),
        }];
        // Out of lead order: the outcomes still come back in the order asked.
        let outcomes = a
            .save_many(&[
                save("B3", v("B3"), no_room),
                save("B1", v("B1"), vec![]),
                save("B4", v("B4"), vec![]),
                save("B2", v("B2") - 1, vec![]),
            ])
            .await
            .unwrap();
        assert_eq!(
            outcomes,
            [Saved::Full("an".into()), Saved::Done, Saved::Done, Saved::Changed],
            "{backend}"
        );
        let states = a.states(&asked).await.unwrap();
        let mut saved: Vec<&String> = states.keys().collect();
        saved.sort();
        assert_eq!(saved, ["B1", "B4"], "{backend}");
        assert_eq!(states["B4"].doc, serde_json::json!({"lead": "B4"}));
        // Automation's bundle holds what the reads one by one give.
        let bundle = s.lead_bundle(&asked).await.unwrap();
        assert!(bundle.active.is_some(), "{backend}: the active model");
        let mut got: Vec<&String> = bundle.records.keys().collect();
        got.sort();
        assert_eq!(got, ids, "{backend}: the missing lead is left out");
        for id in ids {
            assert_eq!(bundle.records[id].version, leads[id].version, "{backend} {id}");
            let event_ids = |m: &HashMap<String, Vec<Event>>| {
                m.get(id)
                    .map(|v| v.iter().map(|e| e.id.clone()).collect::<Vec<_>>())
                    .unwrap_or_default()
            };
            assert_eq!(
                event_ids(&bundle.events),
                event_ids(&lead_events),
                "{backend} {id}"
            );
        }
        let mut with_state: Vec<&String> = bundle.states.keys().collect();
        with_state.sort();
        assert_eq!(with_state, ["B1", "B4"], "{backend}");
        assert_eq!(bundle.states["B4"].rev, states["B4"].rev, "{backend}");
        assert_eq!(
            bundle.workflows.len(),
            s.workflows(&asked).await.unwrap().len(),
            "{backend}"
        );
        assert!(
            a.loads().await.unwrap().iter().all(|l| l.open_leads == 0),
            "{backend}: nothing of B3's refused save stays"
        );
        // A second try of the same saves: the stored revisions moved on.
        let again = a.save_many(&[save("B1", v("B1"), vec![])]).await.unwrap();
        assert_eq!(again, [Saved::Changed], "{backend}");
    }
}

/// Leads the engine found unchanged are recorded in bulk: only on the state
/// revision they were found at, never moving a version back. And each lead's
/// last activity, as of a moment.
#[tokio::test]
async fn seen_marks_and_last_activity() {
    use leadscore_store::automation::*;
    for f in backends().await {
        let s = &*f.store;
        let backend = s.backend();
        let a = s.automation();
        with_spec_model(s).await;
        let ids: Vec<String> = ["M1", "M2", "M3", "nobody"].map(String::from).to_vec();
        s.write_leads(
            ids[..3].iter().map(|id| new(spec_lead(id))).collect(),
            OnConflict::Refuse,
            t0(),
        )
        .await
        .unwrap();
        let version = async |id: &str| s.get_lead(id).await.unwrap().unwrap().version;
        let mut saves = Vec::new();
        for id in ["M1", "M2"] {
            saves.push(AutomationSave {
                lead: id.into(),
                rev: 0,
                record: AutomationRecord {
                    lead_version: version(id).await,
                    doc: serde_json::json!({"lead": id}),
                    ..Default::default()
                },
                now: t0(),
                ..Default::default()
            });
        }
        assert_eq!(a.save_many(&saves).await.unwrap(), [Saved::Done, Saved::Done]);
        let unseen = async || a.unseen_page("", 100).await.unwrap().0;
        assert_eq!(unseen().await, ["M3"], "{backend}: M3 has no state yet");

        // Events move M1 and M2 on; M3 gets one dated ahead.
        let mut events = spec_events("M1");
        events.extend(spec_events("M2"));
        events.push(ev("M3-later", "M3", "email_clicked", -1.0, &[]));
        s.ingest(events, t0()).await.unwrap();
        assert_eq!(unseen().await, ["M1", "M2", "M3"], "{backend}");

        let (v1, v2) = (version("M1").await, version("M2").await);
        a.mark_seen(&[
            SeenMark {
                lead: "M1".into(),
                lead_version: v1,
                rev: 1,
            },
            // Found at a revision that is not the stored one: left alone.
            SeenMark {
                lead: "M2".into(),
                lead_version: v2,
                rev: 7,
            },
            SeenMark {
                lead: "nobody".into(),
                lead_version: 1,
                rev: 1,
            },
        ])
        .await
        .unwrap();
        assert_eq!(unseen().await, ["M2", "M3"], "{backend}");
        let states = a.states(&ids).await.unwrap();
        assert_eq!(states["M1"].lead_version, v1, "{backend}");
        assert_eq!(states["M1"].rev, 1, "{backend}: a mark is no new revision");
        assert_eq!(states["M1"].doc, serde_json::json!({"lead": "M1"}), "{backend}");
        // An older mark arriving late does not move the version back.
        a.mark_seen(&[SeenMark {
            lead: "M1".into(),
            lead_version: v1 - 1,
            rev: 1,
        }])
        .await
        .unwrap();
        assert_eq!(a.states(&ids).await.unwrap()["M1"].lead_version, v1, "{backend}");
        a.mark_seen(&[]).await.unwrap();

        let last = a.last_activity(&ids, t0()).await.unwrap();
        let latest = t0().minus_days(2.0);
        assert_eq!(
            last.get("M1"),
            Some(&latest),
            "{backend}: the demo request two days before"
        );
        assert_eq!(last.get("M2"), Some(&latest), "{backend}");
        assert!(
            !last.contains_key("M3"),
            "{backend}: its only event is still to come"
        );
        let later = a.last_activity(&ids, t0().minus_days(-2.0)).await.unwrap();
        assert_eq!(later.get("M3"), Some(&t0().minus_days(-1.0)), "{backend}");
        assert_eq!(
            later.len(),
            3,
            "{backend}: no entry for a lead that does not exist"
        );
    }
}

/// Users, sessions and the overview's figures, on both databases.
#[tokio::test]
async fn accounts_and_the_overview_figures() {
    use leadscore_store::accounts::User;
    for f in backends().await {
        let s = &*f.store;
        let acc = s.accounts();
        let user = |role: &str| User {
            name: "an".into(),
            password_hash: "$argon2id$x".into(),
            role: role.into(),
            locale: "vi".into(),
            created_at: t0(),
            active: true,
        };
        acc.put_user(&user("rep")).await.unwrap();
        let later = Timestamp::from_micros(t0().as_micros() + 3_600_000_000);
        acc.create_session("h1", "an", "c1", t0(), later).await.unwrap();
        let live = acc.session("h1", t0()).await.unwrap().expect("a live session");
        assert_eq!(
            (live.user.role.as_str(), live.csrf.as_str()),
            ("rep", "c1"),
            "{}",
            s.backend()
        );
        assert!(acc.session("h1", later).await.unwrap().is_none(), "expired");
        assert!(acc.session("nope", t0()).await.unwrap().is_none());
        // A reset (new role) ends the sessions.
        acc.put_user(&user("manager")).await.unwrap();
        assert!(acc.session("h1", t0()).await.unwrap().is_none());
        assert_eq!(acc.user("an").await.unwrap().unwrap().role, "manager");
        assert!(acc.set_locale("an", "uk").await.unwrap());
        assert_eq!(acc.users().await.unwrap()[0].locale, "uk");

        // The overview: by band, by owner, MQLs per week, untouched hot leads.
        with_spec_model(s).await;
        let mut hot = new(spec_lead("H1"));
        hot.owner = Some("an".into());
        s.write_leads(vec![hot, new(spec_lead("C1"))], OnConflict::Refuse, t0())
            .await
            .unwrap();
        let mut events = spec_events("H1");
        for i in 0..6 {
            events.push(ev(
                &format!("p{i}"),
                "H1",
                "page_viewed",
                1.0,
                &[("path", "/pricing")],
            ));
        }
        s.ingest(events, t0()).await.unwrap();
        let o = s
            .stats()
            .overview(t0(), 12, &["hot".into(), "very_hot".into()])
            .await
            .unwrap();
        let band = |b: &str| o.by_band.iter().find(|c| c.key == b).map_or(0, |c| c.count);
        assert_eq!((band("hot"), band("cold")), (1, 1), "{}: {o:?}", s.backend());
        assert!(
            o.by_owner_band
                .iter()
                .any(|c| c.key == "an" && c.sub.as_deref() == Some("hot") && c.count == 1)
        );
        assert_eq!(o.mqls_per_week.iter().map(|w| w.count).sum::<i64>(), 1, "{o:?}");
        assert_eq!(o.mqls_per_week.len(), 12, "every week, empty ones too");
        let last = o.mqls_per_week.last().unwrap();
        assert_eq!(
            (last.key.as_str(), last.count),
            ("2026-10-26", 1),
            "the week's Monday"
        );
        assert_eq!(
            o.untouched_hot.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(),
            ["H1"]
        );
    }
}

/// A database of schema version 1 (events in ingest order, with an index by
/// lead) is upgraded when opened: every event is kept, in the same order per
/// lead, duplicates are still recognised, and new events come after the old.
#[tokio::test]
async fn a_version_1_sqlite_database_is_upgraded_with_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.db");
    let url = format!("sqlite://{}", file.display());
    let ids = ["U1", "U2", "U3"];
    let mut before = Vec::new();
    {
        let s = open(&url).await.unwrap();
        with_spec_model(&*s).await;
        let leads = ids.iter().map(|id| new(spec_lead(id))).collect();
        s.write_leads(leads, OnConflict::Refuse, t0()).await.unwrap();
        // Interleaved, so that each lead's events are spread over the seqs.
        for i in 0..6 {
            let batch = ids.iter().map(|id| spec_events(id)[5 - i].clone()).collect();
            s.ingest(batch, t0()).await.unwrap();
        }
        for id in ids {
            before.push(s.lead_events(id).await.unwrap());
        }
    }
    // Back to version 1's layout, as a database written before the upgrade.
    let conn = rusqlite::Connection::open(&file).unwrap();
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF;
         CREATE TABLE events_v1 (
             seq         INTEGER PRIMARY KEY,
             id          TEXT NOT NULL UNIQUE,
             lead        TEXT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
             type        TEXT NOT NULL,
             occurred_at INTEGER NOT NULL,
             properties  TEXT,
             received_at INTEGER NOT NULL
         );
         INSERT INTO events_v1 SELECT seq, id, lead, type, occurred_at, properties, received_at FROM events;
         DROP TABLE events;
         DROP TABLE event_seq;
         ALTER TABLE events_v1 RENAME TO events;
         CREATE INDEX events_by_lead ON events (lead, seq);
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);

    let s = open(&url).await.unwrap();
    for (id, events) in ids.iter().zip(&before) {
        assert_eq!(&s.lead_events(id).await.unwrap(), events, "{id}");
    }
    let again = spec_events("U2")[0].clone();
    let late = ev("U2-late", "U2", "email_clicked", 0.0, &[]);
    assert_eq!(
        s.ingest(vec![again, late.clone()], t0()).await.unwrap(),
        vec![IngestStatus::Duplicate, IngestStatus::Accepted]
    );
    let events = s.lead_events("U2").await.unwrap();
    assert_eq!(events.len(), 7);
    assert_eq!(events.last(), Some(&late));
    let stored = s.get_lead("U2").await.unwrap().unwrap().score.unwrap();
    assert_eq!(stored.score, recomputed(&*s, "U2", t0()).await.score);
    // A rescoring right after the upgrade fills the cold cache from the new
    // table (leads and events walked together) and scores every lead right.
    activate_second_and_check(&*s, &ids).await;
    drop(s);

    let conn = rusqlite::Connection::open(&file).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    let sql: String = conn
        .query_row("SELECT sql FROM sqlite_master WHERE name = 'events'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(version, 3);
    assert!(sql.contains("WITHOUT ROWID"), "{sql}");
}
