//! How long does rescoring one lead take? The live service rescores a lead
//! every time one of its events arrives, so this must stay in microseconds.
//!
//! Run: `cargo bench -p leadscore-core --bench score_one`

use std::hint::black_box;
use std::time::Instant;

use leadscore_core::{Event, Lead, ScoringModel, StdField, Timestamp};

const MODEL: &str = include_str!("../tests/fixtures/spec-model.toml");

fn events(n: usize, as_of: Timestamp) -> Vec<Event> {
    let types = [
        "email_opened",
        "email_clicked",
        "page_viewed",
        "webinar_attended",
        "demo_requested",
        "unsubscribed",
    ];
    (0..n)
        .map(|i| Event {
            id: format!("e{i}"),
            lead: "L1".into(),
            kind: types[i % types.len()].into(),
            occurred_at: as_of.minus_days((i * 7 % 180) as f64 + 0.5),
            properties: [(
                "path".to_owned(),
                if i % 3 == 0 { "/pricing" } else { "/blog" }.to_owned(),
            )]
            .into(),
        })
        .collect()
}

fn main() {
    let model = ScoringModel::from_toml(MODEL, "spec-model.toml").expect("valid");
    let as_of = Timestamp::parse("2026-11-01T00:00:00Z").expect("valid");
    let lead = Lead::new("L1")
        .with(StdField::JobTitle, "Founder & CEO")
        .with(StdField::Industry, "Travel")
        .with(StdField::Employees, "120")
        .with(StdField::Email, "lan@vietravel-corp.com")
        .with(StdField::Phone, "+84 912 345 678");
    let _ = model.score(&lead, &[], as_of); // load the e-mail and phone data once

    println!(
        "{:>8}  {:>14}  {:>22}  {:>28}",
        "events", "score (µs)", "score_hits only (µs)", "next change, 400 days (µs)"
    );
    // The automation asks, after each rescoring, when the band or MQL will
    // next change by time alone, up to its horizon (400 days by default).
    let horizon = Timestamp::from_micros(as_of.as_micros() + 400 * 86_400_000_000);
    for n in [10, 100, 300, 1000] {
        let evs = events(n, as_of);
        let fit = model.evaluate_fit(&lead);
        let mut hits: Vec<_> = evs
            .iter()
            .enumerate()
            .flat_map(|(seq, e)| {
                model
                    .rules_for_event(&e.kind, &e.properties)
                    .map(move |rule| leadscore_core::Hit {
                        rule,
                        at: e.occurred_at,
                        seq: seq as u64,
                    })
            })
            .collect();
        let rounds = 20_000 / n.max(1) * 10;
        let t = Instant::now();
        for _ in 0..rounds {
            black_box(model.score(black_box(&lead), black_box(&evs), as_of));
        }
        let whole = t.elapsed().as_secs_f64() * 1e6 / rounds as f64;
        let t = Instant::now();
        for _ in 0..rounds {
            black_box(model.score_hits(black_box(&fit), black_box(&mut hits), as_of));
        }
        let core = t.elapsed().as_secs_f64() * 1e6 / rounds as f64;
        let t = Instant::now();
        for _ in 0..rounds {
            black_box(model.next_change_with(black_box(&fit), black_box(&hits), as_of, horizon, &[]));
        }
        let next = t.elapsed().as_secs_f64() * 1e6 / rounds as f64;
        println!("{n:>8}  {whole:>14.2}  {core:>22.2}  {next:>28.2}");
    }
}
