//! Property tests of the scoring contract (`shared/spec/scoring-model.md`): random leads
//! and event lists against the spec's model, a model with negative points and a narrow
//! score range, and a model without `[grade]` and `[mql]`.

mod common;

use std::collections::HashSet;
use std::sync::LazyLock;

use common::*;
use leadscore_core::{Event, Grade, Lead, RuleKind, Score, ScoringModel, StdField, Timestamp, round2};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};

const DAY_SECS: i64 = 86_400;

/// Negative points, fractional points, every behavior option and a narrow range.
const NEGATIVE_MODEL: &str = r#"
name = "negative-narrow"

[score]
min = -15
max = 20

[[band]]
name = "negative"
from = -15
[[band]]
name = "neutral"
from = 0
[[band]]
name = "warm"
from = 7.5
[[band]]
name = "hot"
from = 12.25

[mql]
threshold = 10.5
min_grade = "B"

[grade]
A = 6
B = 1.5
C = -4

[[fit]]
id = "decision_maker"
field = "job_title"
matches = "(?i)\\b(ceo|founder|head|vp)\\b"
points = 4.25

[[fit]]
id = "free_email"
field = "email"
is = "free_email"
points = -3.5

[[fit]]
id = "disposable"
field = "email"
is = "disposable_email"
points = -7

[[fit]]
id = "big"
field = "employees"
gte = 500
points = 2.125

[[fit]]
id = "mid"
field = "employees"
gt = 100
lt = 500
points = 1.333

[[fit]]
id = "customer"
field = "is_customer"
equals = true
points = -5

[[fit]]
id = "paid_plan"
field = "plan"
in = ["pro", "enterprise"]
points = 1.75

[[fit]]
id = "full_name"
field = "first_name"
is = "full_name"
points = 0.5

[[fit]]
id = "no_phone"
field = "phone"
is = "valid_phone"
negate = true
points = -1.01

[[behavior]]
id = "demo"
events = ["demo_requested", "trial_started"]
points = 6.5
max_events = 2
half_life_days = 10.5

[[behavior]]
id = "clicks"
events = ["email_clicked"]
points = 1.7
cap = 5.1
half_life_days = 7

[[behavior]]
id = "pricing"
events = ["page_viewed"]
where = { path = "/pricing" }
points = 2.3
window_days = 14

[[behavior]]
id = "unsub"
events = ["unsubscribed"]
points = -8.25
max_events = 1

[[behavior]]
id = "missed"
events = ["meeting_missed"]
points = -3.3
cap = 7
half_life_days = 20
window_days = 90
max_events = 3
"#;

/// No `[grade]`, no `[mql]`: every lead is D and nobody is MQL.
const BARE_MODEL: &str = r#"
name = "bare"
[[band]]
name = "low"
from = 0
[[band]]
name = "high"
from = 10

[[fit]]
id = "ceo"
field = "job_title"
matches = "(?i)ceo"
points = 30

[[behavior]]
id = "any"
events = ["email_clicked", "page_viewed", "demo_requested"]
points = 3
half_life_days = 5
"#;

static MODELS: LazyLock<Vec<ScoringModel>> = LazyLock::new(|| {
    vec![
        spec_model(),
        ScoringModel::from_toml(NEGATIVE_MODEL, "negative-narrow.toml").unwrap_or_else(|e| panic!("{e}")),
        ScoringModel::from_toml(BARE_MODEL, "bare.toml").unwrap_or_else(|e| panic!("{e}")),
    ]
});

fn config() -> Config {
    let mut c = Config::default();
    if c.rng_seed == RngSeed::Random {
        c.rng_seed = RngSeed::Fixed(0x1EAD_5C03E); // deterministic unless PROPTEST_RNG_SEED says otherwise
    }
    c.failure_persistence = None;
    c
}

// ---------------------------------------------------------------- generators

fn pick(values: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    prop::sample::select(values)
}

fn arb_lead() -> impl Strategy<Value = Lead> {
    let names = (
        pick(&["Lan", "Nguyễn Thị Lan", "Olena", "", "  ", "Ana Maria"]),
        pick(&["Nguyen", "", " ", "Kovalenko"]),
    );
    let person = (
        pick(&[
            "CEO",
            "Founder & CEO",
            "Engineer",
            "Head of Sales",
            "",
            "  ",
            "intern",
            "VP Marketing",
            "Headhunter",
        ]),
        pick(&[
            "Software",
            "travel ",
            "Retail",
            "",
            "TELECOM",
            "software, telecom",
        ]),
        pick(&[
            "120", "500", "499", "100", "1000", "500+", "abc", "1,000", "", " 750 ", "-3",
        ]),
        pick(&[
            "lan@vietravel-corp.com",
            "x@gmail.com",
            "y@mailinator.com",
            "not-an-email",
            "",
            "Z@Yahoo.com",
        ]),
        pick(&[
            "+84 912 345 678",
            "0912 345 678",
            "12345",
            "",
            "+1 650-253-0000",
            "call me",
        ]),
        pick(&["VN", "US", "", "Atlantis", "Vietnam"]),
    );
    let flags = (
        pick(&["yes", "no", "", "1", "0", "maybe", "TRUE"]),
        pick(&["pro", "enterprise", "free", "", "PRO "]),
    );
    (person, names, flags).prop_map(
        |((title, industry, employees, email, phone, country), (first, last), (customer, plan))| {
            Lead::new("L1")
                .with(StdField::JobTitle, title)
                .with(StdField::Industry, industry)
                .with(StdField::Employees, employees)
                .with(StdField::Email, email)
                .with(StdField::Phone, phone)
                .with(StdField::Country, country)
                .with(StdField::FirstName, first)
                .with(StdField::LastName, last)
                .with(StdField::IsCustomer, customer)
                .with_attribute("plan", plan)
        },
    )
}

/// The spec model's event types, the negative model's, and some no rule lists.
const TYPES: &[&str] = &[
    "demo_requested",
    "trial_started",
    "email_clicked",
    "page_viewed",
    "unsubscribed",
    "meeting_missed",
    "email_opened",
    "webinar_attended",
    "Page_Viewed",
    "",
];

/// Seconds before T (negative: after T), within ±200 days, often on a day boundary
/// (window edges, half-lives) or one second either side of T.
fn arb_offset() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -200 * DAY_SECS..=200 * DAY_SECS,
        1 => (-200i64..=200).prop_map(|d| d * DAY_SECS),
        1 => prop::sample::select(vec![0, 1, -1, 14 * DAY_SECS, 30 * DAY_SECS, 90 * DAY_SECS, 14 * DAY_SECS + 1, 30 * DAY_SECS - 1]),
    ]
}

fn at(offset_secs: i64) -> Timestamp {
    Timestamp::from_micros(t0().as_micros() - offset_secs * 1_000_000)
}

/// (type, seconds before T, path property).
type EventSpec = (&'static str, i64, Option<&'static str>);

fn arb_event_spec() -> impl Strategy<Value = EventSpec> {
    (
        pick(TYPES),
        arb_offset(),
        prop::option::of(pick(&["/pricing", "/blog", "/Pricing"])),
    )
}

fn make_event(id: String, (kind, offset, path): EventSpec) -> Event {
    let props: Vec<(&str, &str)> = path.map(|p| ("path", p)).into_iter().collect();
    event(&id, kind, at(offset), &props)
}

/// Events with ids from a small pool, so the same id often comes back.
fn arb_events() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec((0u8..12, arb_event_spec()), 0..40).prop_map(|v| {
        v.into_iter()
            .map(|(id, spec)| make_event(format!("e{id}"), spec))
            .collect()
    })
}

/// Events with distinct ids and distinct timestamps.
fn arb_distinct_events() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec(arb_event_spec(), 0..40).prop_map(|specs| {
        let mut seen = HashSet::new();
        specs
            .into_iter()
            .filter(|(_, offset, _)| seen.insert(*offset))
            .enumerate()
            .map(|(i, spec)| make_event(format!("d{i}"), spec))
            .collect()
    })
}

fn arb_model() -> impl Strategy<Value = usize> {
    0..MODELS.len()
}

// ---------------------------------------------------------------- the invariants

fn has_two_decimals(x: f64) -> bool {
    let scaled = x * 100.0;
    (scaled - scaled.round()).abs() < 1e-6
}

fn expected_grade(model: &ScoringModel, fit: f64) -> Grade {
    match model.grades {
        None => Grade::D,
        Some(g) if fit >= g.a => Grade::A,
        Some(g) if fit >= g.b => Grade::B,
        Some(g) if fit >= g.c => Grade::C,
        Some(_) => Grade::D,
    }
}

fn invariants(model: &ScoringModel, s: &Score) -> Result<(), TestCaseError> {
    // Range.
    prop_assert!(
        model.min <= s.score && s.score <= model.max,
        "score {} outside [{}, {}]",
        s.score,
        model.min,
        model.max
    );
    // Two decimals everywhere.
    for (what, x) in [("score", s.score), ("fit", s.fit), ("engagement", s.engagement)] {
        prop_assert!(has_two_decimals(x), "{what} = {x} has more than 2 decimals");
    }
    for c in &s.breakdown {
        prop_assert!(
            has_two_decimals(c.points),
            "line {:?} has more than 2 decimals",
            c
        );
        prop_assert!(c.points != 0.0, "a zero line in the breakdown: {:?}", c);
        prop_assert_eq!(c.events.is_some(), c.kind == RuleKind::Behavior);
        if let Some(n) = c.events {
            prop_assert!(n >= 1, "a behavior line with no events: {:?}", c);
        }
    }
    // The total is the clamped sum of the (rounded) parts, up to rounding.
    let parts = (s.fit + s.engagement).clamp(model.min, model.max);
    prop_assert!(
        (s.score - parts).abs() <= 0.010_000_1,
        "score {} vs fit + engagement {}",
        s.score,
        parts
    );
    // Band: the highest whose `from` the rounded total reaches.
    let band = model.bands.iter().rposition(|b| b.from <= s.score);
    prop_assert_eq!(band, Some(s.band), "band of {}", s.score);
    // Grade from the rounded fit and the model's bounds.
    prop_assert_eq!(s.grade, expected_grade(model, s.fit), "grade of fit {}", s.fit);
    // MQL from the rounded total and the grade.
    let mql = model
        .mql
        .is_some_and(|m| s.score >= m.threshold && m.min_grade.is_none_or(|g| s.grade <= g));
    prop_assert_eq!(s.mql, mql, "mql of score {} grade {}", s.score, s.grade);
    Ok(())
}

// ---------------------------------------------------------------- a direct reading of the spec

struct Reference {
    fit: f64,
    engagement: f64,
    total: f64,
    /// Events counted per behavior rule.
    counted: Vec<u32>,
}

/// The behavior semantics, step by step as the spec states them, with no shared code
/// with the engine beyond the rule values (fit rules are evaluated by the engine; the
/// fit operators have their own tests).
fn reference(model: &ScoringModel, lead: &Lead, events: &[Event], as_of: Timestamp) -> Reference {
    let fit: f64 = model.fit.iter().filter(|r| r.holds(lead)).map(|r| r.points).sum();

    let mut seen = HashSet::new();
    let unique: Vec<(usize, &Event)> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| seen.insert(e.id.clone()))
        .collect();

    let mut engagement = 0.0;
    let mut counted = Vec::new();
    for rule in &model.behavior {
        // 1. type, where, not after T
        let mut kept: Vec<(usize, Timestamp)> = unique
            .iter()
            .filter(|(_, e)| rule.events.contains(&e.kind))
            .filter(|(_, e)| rule.filter.iter().all(|(k, v)| e.properties.get(k) == Some(v)))
            .filter(|(_, e)| e.occurred_at <= as_of)
            .map(|(i, e)| (*i, e.occurred_at))
            .collect();
        // 2. window: drop occurred_at <= T - W days
        if let Some(w) = rule.window_days {
            let start = as_of.as_micros() - (w * 86_400_000_000.0).round() as i64;
            kept.retain(|(_, t)| t.as_micros() > start);
        }
        // 3. max_events: the N most recent, ties to the later ingested
        kept.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
        if let Some(n) = rule.max_events {
            kept.truncate(n as usize);
        }
        // 4. decay
        let mut sum = 0.0;
        for (_, t) in &kept {
            let age_days = (as_of.as_micros() - t.as_micros()) as f64 / 1_000_000.0 / 86_400.0;
            sum += match rule.half_life_days {
                Some(h) => rule.points * 0.5f64.powf(age_days / h),
                None => rule.points,
            };
        }
        // 5. cap
        if let Some(c) = rule.cap {
            sum = sum.clamp(-c, c);
        }
        engagement += sum;
        counted.push(kept.len() as u32);
    }
    let total = (fit + engagement).clamp(model.min, model.max);
    Reference {
        fit,
        engagement,
        total,
        counted,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 0.005_000_1 // a rounded value vs the unrounded one
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_score_is_consistent(m in arb_model(), lead in arb_lead(), events in arb_events()) {
        let model = &MODELS[m];
        let s = model.score(&lead, &events, t0());
        invariants(model, &s)?;
        // The fit depends on the lead alone.
        prop_assert_eq!(s.fit, model.score(&lead, &[], t0()).fit);
    }

    #[test]
    fn scores_agree_with_a_direct_reading_of_the_spec(
        m in arb_model(),
        lead in arb_lead(),
        events in arb_events(),
    ) {
        let model = &MODELS[m];
        let s = model.score(&lead, &events, t0());
        let r = reference(model, &lead, &events, t0());
        prop_assert!(close(s.fit, r.fit), "fit {} vs {}", s.fit, r.fit);
        prop_assert!(close(s.engagement, r.engagement), "engagement {} vs {}", s.engagement, r.engagement);
        prop_assert!(close(s.score, r.total), "total {} vs {}", s.score, r.total);
        for c in s.breakdown.iter().filter(|c| c.kind == RuleKind::Behavior) {
            prop_assert_eq!(c.events, Some(r.counted[c.index]), "events counted for `{}`", c.rule_id(model));
        }
    }

    #[test]
    fn repeating_an_event_changes_nothing(
        m in arb_model(),
        lead in arb_lead(),
        events in arb_events(),
        which in any::<Index>(),
        other in arb_event_spec(),
    ) {
        prop_assume!(!events.is_empty());
        let model = &MODELS[m];
        let before = model.score(&lead, &events, t0());
        let original = &events[which.index(events.len())];

        // The same event ingested again.
        let mut again = events.clone();
        again.push(original.clone());
        prop_assert_eq!(&model.score(&lead, &again, t0()), &before);

        // Something else under the same id: the first one wins.
        let mut clash = events.clone();
        clash.push(make_event(original.id.clone(), other));
        prop_assert_eq!(&model.score(&lead, &clash, t0()), &before);
    }

    #[test]
    fn events_after_as_of_change_nothing(
        m in arb_model(),
        lead in arb_lead(),
        events in arb_events(),
        future in prop::collection::vec(
            (any::<Index>(), pick(TYPES), 1..=200 * DAY_SECS, prop::option::of(pick(&["/pricing", "/blog"]))),
            1..10,
        ),
    ) {
        let model = &MODELS[m];
        let before = model.score(&lead, &events, t0());
        let mut later = events.clone();
        for (i, (pos, kind, secs_after, path)) in future.into_iter().enumerate() {
            let e = make_event(format!("future{i}"), (kind, -secs_after, path));
            later.insert(pos.index(later.len() + 1), e);
        }
        prop_assert_eq!(&model.score(&lead, &later, t0()), &before);
    }

    #[test]
    fn the_order_of_distinct_events_does_not_matter(
        m in arb_model(),
        lead in arb_lead(),
        (events, shuffled) in arb_distinct_events().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
    ) {
        let model = &MODELS[m];
        let s = model.score(&lead, &events, t0());
        invariants(model, &s)?;
        prop_assert_eq!(&model.score(&lead, &shuffled, t0()), &s);
    }

    #[test]
    fn scoring_later_only_decays_positive_rules(
        lead in arb_lead(),
        events in arb_events(),
        later_days in 0u32..100,
    ) {
        // Under a model whose only behavior rule is positive, decaying and unwindowed,
        // scoring later (with no new events up to then) never raises the engagement.
        let model = &MODELS[2];
        let as_of = Timestamp::from_micros(t0().as_micros() + i64::from(later_days) * DAY_SECS * 1_000_000);
        let past: Vec<Event> = events.into_iter().filter(|e| e.occurred_at <= t0()).collect();
        let later = model.score(&lead, &past, as_of);
        let now_past = model.score(&lead, &past, t0());
        prop_assert!(later.engagement <= now_past.engagement, "{} then {}", now_past.engagement, later.engagement);
        invariants(model, &later)?;
    }

    #[test]
    fn round2_keeps_two_decimals_and_moves_at_most_half_a_cent(x in -1.0e6f64..1.0e6) {
        let r = round2(x);
        prop_assert!(has_two_decimals(r), "{x} -> {r}");
        prop_assert!((r - x).abs() <= 0.005 + 1e-9, "{x} -> {r}");
        prop_assert_eq!(round2(-x), -r, "half away from zero is symmetric");
        prop_assert_eq!(round2(r), r, "idempotent");
    }
}

#[test]
fn models_under_test_are_what_the_properties_assume() {
    let [spec, negative, bare] = &MODELS[..] else {
        panic!()
    };
    assert!(spec.grades.is_some() && spec.mql.is_some());
    assert_eq!((negative.min, negative.max), (-15.0, 20.0));
    assert!(negative.fit.iter().any(|r| r.points < 0.0) && negative.behavior.iter().any(|r| r.points < 0.0));
    assert!(bare.grades.is_none() && bare.mql.is_none());
    // A CEO with no events under the bare model: fit 30, clamped to 100 nowhere near, grade D.
    let s = bare.score(&Lead::new("L1").with(StdField::JobTitle, "CEO"), &[], t0());
    assert_eq!((s.score, s.grade, s.mql), (30.0, Grade::D, false));
}
