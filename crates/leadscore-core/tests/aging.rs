//! Scores as time passes (`leadscore_core::aging`): when a lead's band or MQL flag
//! changes by itself, through decay, windows, future events and `max_events`,
//! checked against moments worked out by hand from the spec's formulas.

mod common;

use std::collections::BTreeSet;

use common::*;
use leadscore_core::{Event, FitOutcome, Hit, Lead, ScoringModel, StdField, Timestamp};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};

const SECOND: i64 = 1_000_000;

/// Bands cold 0, warm 25, hot 50, very_hot 76 on 0..100, a fit rule `title`
/// (any job title) worth `fit` points, and `extra` (behavior rules, `[mql]`).
fn model(fit: f64, extra: &str) -> ScoringModel {
    let text = format!(
        "name = \"m\"\n\
         [[band]]\nname = \"cold\"\nfrom = 0\n\
         [[band]]\nname = \"warm\"\nfrom = 25\n\
         [[band]]\nname = \"hot\"\nfrom = 50\n\
         [[band]]\nname = \"very_hot\"\nfrom = 76\n\
         [[fit]]\nid = \"title\"\nfield = \"job_title\"\nexists = true\npoints = {fit}\n\
         {extra}\n"
    );
    ScoringModel::from_toml(&text, "m.toml").unwrap_or_else(|e| panic!("{e}"))
}

const COLD: usize = 0;
const WARM: usize = 1;
const HOT: usize = 2;

/// A lead the `title` fit rule holds for.
fn titled() -> Lead {
    Lead::new("L1").with(StdField::JobTitle, "Head of Sales")
}

/// `days` after the spec's T (fractional, negative: before).
fn after(days: f64) -> Timestamp {
    t0().minus_days(-days)
}

fn plus(t: Timestamp, micros: i64) -> Timestamp {
    Timestamp::from_micros(t.as_micros() + micros)
}

/// The state as `score_hits` computes it, on a copy (not through `state_at`).
fn state(m: &ScoringModel, fit: &FitOutcome, hits: &[Hit], t: Timestamp) -> (usize, bool) {
    let s = m.score_hits(fit, &mut hits.to_vec(), t);
    (s.band, s.mql)
}

/// A lead scored as of `from` and watched until `horizon`.
struct Case {
    model: ScoringModel,
    fit: FitOutcome,
    hits: Vec<Hit>,
}

impl Case {
    fn new(model: ScoringModel, lead: &Lead, events: &[Event]) -> Case {
        Case {
            fit: model.evaluate_fit(lead),
            hits: model.hits_for_events(events),
            model,
        }
    }

    fn state(&self, t: Timestamp) -> (usize, bool) {
        state(&self.model, &self.fit, &self.hits, t)
    }

    fn next_change(&self, from: Timestamp, horizon: Timestamp) -> Option<Timestamp> {
        self.model.next_change(&self.fit, &self.hits, from, horizon)
    }

    /// The change after `from` is found at the second after `expected` (a
    /// moment worked out by hand), the new state holds there and the old one a
    /// second before; returns the state at the change.
    #[track_caller]
    fn expect_change(&self, from: Timestamp, horizon: Timestamp, expected: Timestamp) -> (usize, bool) {
        let t = self
            .next_change(from, horizon)
            .unwrap_or_else(|| panic!("no change found; expected one at {expected}"));
        let late = t.as_micros() - expected.as_micros();
        assert!(
            (0..SECOND).contains(&late) && t.as_micros() % SECOND == 0,
            "found {t}, expected the whole second after {expected}"
        );
        self.expect_edge(from, t)
    }

    /// `t` is where the state first differs from the one at `from`, to the second.
    #[track_caller]
    fn expect_edge(&self, from: Timestamp, t: Timestamp) -> (usize, bool) {
        let start = self.state(from);
        let now = self.state(t);
        assert_ne!(now, start, "the state at {t} is the one at {from}");
        assert_eq!(
            self.state(plus(t, -SECOND)),
            start,
            "the state a second before {t} has changed already"
        );
        assert_eq!(
            self.model.state_at(&self.fit, &self.hits, t),
            now,
            "state_at agrees with score_hits"
        );
        now
    }
}

fn click(id: &str, at: Timestamp) -> Event {
    event(id, "email_clicked", at, &[])
}

// ---------------------------------------------------------------- decay

#[test]
fn a_hot_lead_cools_to_warm_at_the_second_its_decay_crosses_the_band() {
    let m = model(
        0.0,
        "[[behavior]]\nid = \"click\"\nevents = [\"email_clicked\"]\npoints = 70\nhalf_life_days = 10\n",
    );
    let case = Case::new(m, &Lead::new("L1"), &[click("c1", t0())]);
    assert_eq!(case.state(t0()), (HOT, false));
    // 70 * 0.5^(d / 10) rounds below 50 once it is below 49.995.
    let days = 10.0 * (70.0f64 / 49.995).log2();
    let expected = after(days);
    assert_eq!(case.expect_change(t0(), after(365.0), expected), (WARM, false));
    // From a later moment it is the same change.
    assert_eq!(
        case.next_change(after(1.5), after(365.0)),
        case.next_change(t0(), after(365.0))
    );
}

#[test]
fn a_score_threshold_inside_a_band_is_watched_when_asked() {
    let m = model(
        0.0,
        "[[behavior]]\nid = \"click\"\nevents = [\"email_clicked\"]\npoints = 70\nhalf_life_days = 10\n",
    );
    let lead = Lead::new("L1");
    let fit = m.evaluate_fit(&lead);
    let hits = m.hits_for_events(&[click("c1", t0())]);
    // 70 falls below 60 (still hot) after 10 log2(70 / 59.995) days.
    let expected = after(10.0 * (70.0f64 / 59.995).log2());
    let found = m
        .next_change_with(&fit, &hits, t0(), after(365.0), &[60.0])
        .expect("the total crosses 60");
    assert!(
        (found.as_micros() - expected.as_micros()).abs() <= SECOND,
        "{found} vs {expected}"
    );
    let score = |t| m.score_hits(&fit, &mut hits.clone(), t).score;
    assert!(score(found) < 60.0 && score(plus(found, -SECOND)) >= 60.0);
    // Without the threshold the next change is the band's, later.
    assert!(m.next_change(&fit, &hits, t0(), after(365.0)).unwrap() > found);
}

#[test]
fn a_negative_rule_fading_lets_the_score_rise() {
    let m = model(
        40.0,
        "[[behavior]]\nid = \"unsubscribed\"\nevents = [\"unsubscribed\"]\npoints = -30\nhalf_life_days = 7\n",
    );
    let case = Case::new(m, &titled(), &[event("u", "unsubscribed", t0(), &[])]);
    assert_eq!(case.state(t0()), (COLD, false)); // 40 - 30
    // 40 - 30 * 0.5^(d / 7) rounds to 25 once 30 * 0.5^(d / 7) <= 15.005.
    let expected = after(7.0 * (30.0f64 / 15.005).log2());
    assert_eq!(case.expect_change(t0(), after(90.0), expected), (WARM, false));
}

/// Positive and negative points decaying at once: the total rises, then falls.
#[test]
fn decay_of_both_signs_rises_then_falls() {
    let m = model(
        0.0,
        "[[behavior]]\nid = \"click\"\nevents = [\"email_clicked\"]\npoints = 60\nhalf_life_days = 30\n\
         [[behavior]]\nid = \"bounce\"\nevents = [\"email_bounced\"]\npoints = -40\nhalf_life_days = 3\n",
    );
    let case = Case::new(
        m,
        &Lead::new("L1"),
        &[click("c", t0()), event("b", "email_bounced", t0(), &[])],
    );
    let total = |d: f64| 60.0 * 0.5f64.powf(d / 30.0) - 40.0 * 0.5f64.powf(d / 3.0);
    // The moment in [lo, hi] days where `total` crosses 24.995 (bisected on the formula).
    let crossing = |mut lo: f64, mut hi: f64| {
        let below = total(lo) < 24.995;
        while (hi - lo) * 86_400.0 > 1e-4 {
            let mid = (lo + hi) / 2.0;
            if (total(mid) < 24.995) == below {
                lo = mid
            } else {
                hi = mid
            }
        }
        after(hi)
    };
    assert_eq!(case.state(t0()), (COLD, false)); // 60 - 40
    // Rises to warm within three days, peaks near 44 around day 9 ...
    assert_eq!(
        case.expect_change(t0(), after(365.0), crossing(0.0, 3.0)),
        (WARM, false)
    );
    // ... and falls back to cold around day 38.
    assert_eq!(
        case.expect_change(after(10.0), after(365.0), crossing(10.0, 100.0)),
        (COLD, false)
    );
}

#[test]
fn the_mql_flag_can_change_without_the_band() {
    let m = model(
        0.0,
        "[mql]\nthreshold = 40\n\
         [[behavior]]\nid = \"click\"\nevents = [\"email_clicked\"]\npoints = 45\nhalf_life_days = 20\n",
    );
    let case = Case::new(m, &Lead::new("L1"), &[click("c", t0())]);
    assert_eq!(case.state(t0()), (WARM, true));
    let expected = after(20.0 * (45.0f64 / 39.995).log2());
    assert_eq!(case.expect_change(t0(), after(365.0), expected), (WARM, false));
}

// ---------------------------------------------------------------- windows

#[test]
fn an_event_leaves_its_window_exactly_window_days_later() {
    let m = model(
        0.0,
        "[[behavior]]\nid = \"pricing\"\nevents = [\"page_viewed\"]\npoints = 30\nwindow_days = 30\n",
    );
    let case = Case::new(m, &Lead::new("L1"), &[event("p", "page_viewed", t0(), &[])]);
    let t = case.next_change(after(1.0), after(90.0));
    assert_eq!(t, Some(after(30.0)));
    assert_eq!(case.expect_edge(after(1.0), after(30.0)), (COLD, false));
    assert_eq!(
        case.state(plus(after(30.0), -1)),
        (WARM, false),
        "still counts a microsecond before"
    );
}

#[test]
fn an_event_between_two_seconds_leaves_at_the_next_whole_second() {
    let m = model(
        0.0,
        "[[behavior]]\nid = \"pricing\"\nevents = [\"page_viewed\"]\npoints = 30\nwindow_days = 30\n",
    );
    let at = plus(t0(), 250_000); // T + 0.25 s
    let case = Case::new(m, &Lead::new("L1"), &[event("p", "page_viewed", at, &[])]);
    // It starts counting at T + 0.25 s: found at T + 1 s.
    assert_eq!(case.next_change(t0(), after(1.0)), Some(plus(t0(), SECOND)));
    assert_eq!(case.expect_edge(t0(), plus(t0(), SECOND)), (WARM, false));
    // It stops at T + 30 d + 0.25 s: found at T + 30 d + 1 s.
    let t = case.next_change(after(1.0), after(90.0));
    assert_eq!(t, Some(plus(after(30.0), SECOND)));
    assert_eq!(case.expect_edge(after(1.0), t.unwrap()), (COLD, false));
}

// ---------------------------------------------------------------- future events

#[test]
fn a_future_event_makes_the_lead_mql_when_it_starts_counting() {
    let m = model(
        30.0,
        "[mql]\nthreshold = 50\n\
         [[behavior]]\nid = \"demo\"\nevents = [\"demo_requested\"]\npoints = 25\n",
    );
    let lead = titled();
    let events = [event("d", "demo_requested", after(5.0), &[])];
    let case = Case::new(m, &lead, &events);
    assert_eq!(case.state(t0()), (WARM, false));
    assert_eq!(case.next_change(t0(), after(30.0)), Some(after(5.0)));
    assert_eq!(case.expect_edge(t0(), after(5.0)), (HOT, true));
    assert!(case.model.score(&lead, &events, after(5.0)).mql);
}

#[test]
fn the_spec_lead_turns_mql_when_a_scheduled_click_counts() {
    let lead = Lead::new("L1")
        .with(StdField::JobTitle, "Founder & CEO")
        .with(StdField::Industry, "Travel")
        .with(StdField::Employees, "120")
        .with(StdField::Email, "lan@vietravel-corp.com")
        .with(StdField::Phone, "+84 912 345 678");
    let mut events = vec![
        event("e1", "email_clicked", days_before(30.0), &[]),
        event("e2", "email_clicked", days_before(60.0), &[]),
        event("e3", "page_viewed", days_before(10.0), &[("path", "/pricing")]),
        event("e4", "page_viewed", days_before(40.0), &[("path", "/pricing")]),
        event("e5", "demo_requested", days_before(2.0), &[]),
        event("e6", "demo_requested", days_before(20.0), &[]),
    ];
    let case = Case::new(spec_model(), &lead, &events);
    let warm = case.state(t0());
    assert_eq!(warm, (WARM, false)); // 45.75
    // Fit 23 and the demo's 15 stay: it fades, but never below warm.
    assert_eq!(case.next_change(t0(), after(3650.0)), None);

    // A click dated a day ahead (5 points) lifts it to 45.75 - decay + 5 > 50.
    events.push(event("e7", "email_clicked", after(1.0), &[]));
    let case = Case::new(spec_model(), &lead, &events);
    assert_eq!(case.next_change(t0(), after(365.0)), Some(after(1.0)));
    assert_eq!(case.expect_edge(t0(), after(1.0)), (HOT, true));
}

#[test]
fn max_events_replaces_a_faded_event_with_a_fresh_one() {
    let m = model(
        10.0,
        "[[behavior]]\nid = \"demo\"\nevents = [\"demo_requested\"]\npoints = 20\nmax_events = 1\nhalf_life_days = 10\n",
    );
    let events = [
        event("old", "demo_requested", after(-10.0), &[]),
        event("new", "demo_requested", after(5.0), &[]),
    ];
    let case = Case::new(m, &titled(), &events);
    assert_eq!(case.state(t0()), (COLD, false)); // 10 + 20 * 0.5
    // The new event replaces the old one (which would still add 7.07): 10 + 20.
    assert_eq!(case.next_change(t0(), after(90.0)), Some(after(5.0)));
    assert_eq!(case.expect_edge(t0(), after(5.0)), (WARM, false));
    // Then 10 + 20 * 0.5^(d / 10) rounds below 25 once 20 * 0.5^(d / 10) < 14.995.
    let expected = after(5.0 + 10.0 * (20.0f64 / 14.995).log2());
    assert_eq!(
        case.expect_change(after(5.0), after(90.0), expected),
        (COLD, false)
    );
}

// ---------------------------------------------------------------- nothing to find

#[test]
fn a_score_that_does_not_move_has_no_next_change() {
    let m = model(
        20.0,
        "[[behavior]]\nid = \"visit\"\nevents = [\"page_viewed\"]\npoints = 10\n\
         [[behavior]]\nid = \"click\"\nevents = [\"email_clicked\"]\npoints = 40\nhalf_life_days = 365\n",
    );
    // 20 + 10 + 40 decaying slowly: 70 is hot, and still 66 after 30 days.
    let events = [event("v", "page_viewed", after(-3.0), &[]), click("c", t0())];
    let case = Case::new(m, &titled(), &events);
    assert_eq!(case.next_change(t0(), after(30.0)), None);
    // Without events, nothing moves ever.
    let bare = Case::new(case.model.clone(), &titled(), &[]);
    assert_eq!(bare.next_change(t0(), after(36_500.0)), None);
}

#[test]
fn the_horizon_is_respected() {
    let m = model(
        0.0,
        "[[behavior]]\nid = \"click\"\nevents = [\"email_clicked\"]\npoints = 70\nhalf_life_days = 10\n",
    );
    let case = Case::new(m, &Lead::new("L1"), &[click("c1", t0())]);
    let t = case.next_change(t0(), after(365.0)).unwrap();
    assert_eq!(
        case.next_change(t0(), t),
        Some(t),
        "a change at the horizon counts"
    );
    assert_eq!(case.next_change(t0(), plus(t, -SECOND)), None);
    assert_eq!(case.next_change(t0(), after(1.0)), None);
    assert_eq!(case.next_change(t0(), t0()), None, "an empty horizon");
    assert_eq!(case.next_change(t, t0()), None, "a horizon before `from`");
    // Events after the horizon change nothing before it.
    let m = model(
        0.0,
        "[[behavior]]\nid = \"demo\"\nevents = [\"demo_requested\"]\npoints = 30\n",
    );
    let case = Case::new(
        m,
        &Lead::new("L1"),
        &[event("d", "demo_requested", after(10.0), &[])],
    );
    assert_eq!(case.next_change(t0(), plus(after(10.0), -1)), None);
    assert_eq!(case.next_change(t0(), after(10.0)), Some(after(10.0)));
}

// ---------------------------------------------------------------- hits

#[test]
fn hits_for_events_score_like_score_does() {
    let m = spec_model();
    let lead = Lead::new("L1").with(StdField::JobTitle, "CEO");
    let events = [
        event("e1", "email_clicked", days_before(3.0), &[]),
        event("e1", "email_clicked", days_before(1.0), &[]), // the same event again: ignored
        event("e2", "page_viewed", days_before(2.0), &[("path", "/pricing")]),
        event("e3", "page_viewed", days_before(2.0), &[("path", "/blog")]), // no rule matches
        event("e4", "demo_requested", days_before(5.0), &[]),
        event("e5", "trial_started", days_before(5.0), &[]), // ties with e4: the later ingested wins
    ];
    let hits = m.hits_for_events(&events);
    let seqs: Vec<u64> = hits.iter().map(|h| h.seq).collect();
    assert_eq!(seqs, [0, 2, 4, 5]);
    assert_eq!(hits[0].at, days_before(3.0));
    let fit = m.evaluate_fit(&lead);
    assert_eq!(
        m.score_hits(&fit, &mut hits.clone(), t0()),
        m.score(&lead, &events, t0())
    );
    let s = m.score(&lead, &events, t0());
    assert_eq!(m.state_at(&fit, &hits, t0()), (s.band, s.mql));
}

// ---------------------------------------------------------------- properties

fn config() -> Config {
    let mut c = Config::default();
    if c.rng_seed == RngSeed::Random {
        c.rng_seed = RngSeed::Fixed(0xA61C_0DE5); // deterministic unless PROPTEST_RNG_SEED says otherwise
    }
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 512; // about one in five finds a change
    }
    c.failure_persistence = None;
    c
}

/// One behavior rule, every option optional, points of either sign.
fn arb_rule() -> impl Strategy<Value = String> {
    (
        -25i32..=30,
        prop::option::of(prop_oneof![Just(0.25), 1.0..60.0f64]),
        prop::option::of(prop_oneof![Just(0.5), 1.0..90.0f64]),
        prop::option::of(1u32..=3),
        prop::option::of(5u32..=40),
    )
        .prop_map(|(points, half_life, window, max_events, cap)| {
            let mut rule = format!("events = [\"e\"]\npoints = {points}\n");
            let options = [
                half_life.map(|h| format!("half_life_days = {h}")),
                window.map(|w| format!("window_days = {w}")),
                max_events.map(|n| format!("max_events = {n}")),
                cap.map(|c| format!("cap = {c}")),
            ];
            for option in options.into_iter().flatten() {
                rule.push_str(&option);
                rule.push('\n');
            }
            rule
        })
}

/// Up to four behavior rules, 2 to 6 bands on -20..100, maybe an MQL rule,
/// and three fit rules (12, 6 and -4 points) graded A 15, B 8, C 2.
fn arb_model() -> impl Strategy<Value = ScoringModel> {
    (
        prop::collection::vec(arb_rule(), 1..=4),
        prop::collection::btree_set(-19i32..80, 1..=5),
        prop::option::of((
            -20i32..=100,
            prop::option::of(prop::sample::select(vec!["A", "B", "C"])),
        )),
    )
        .prop_map(|(rules, bands, mql): (Vec<String>, BTreeSet<i32>, _)| {
            let mut text = String::from("name = \"p\"\n[score]\nmin = -20\nmax = 100\n");
            text.push_str("[[band]]\nname = \"b0\"\nfrom = -20\n");
            for (i, from) in bands.iter().enumerate() {
                text.push_str(&format!("[[band]]\nname = \"b{}\"\nfrom = {from}\n", i + 1));
            }
            if let Some((threshold, grade)) = mql {
                text.push_str(&format!("[mql]\nthreshold = {threshold}\n"));
                if let Some(g) = grade {
                    text.push_str(&format!("min_grade = \"{g}\"\n"));
                }
            }
            text.push_str("[grade]\nA = 15\nB = 8\nC = 2\n");
            for (i, points) in [12, 6, -4].into_iter().enumerate() {
                text.push_str(&format!(
                    "[[fit]]\nid = \"f{i}\"\nfield = \"job_title\"\nexists = true\npoints = {points}\n"
                ));
            }
            for (i, rule) in rules.iter().enumerate() {
                text.push_str(&format!("[[behavior]]\nid = \"r{i}\"\n{rule}"));
            }
            ScoringModel::from_toml(&text, "p.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
        })
}

/// Hits on any rule, from 90 days before `t0` to 90 days after, to the
/// second or (one in four) to the microsecond.
fn arb_hits() -> impl Strategy<Value = Vec<(Index, i64)>> {
    let offset = prop_oneof![
        3 => (-90 * 86_400i64..90 * 86_400).prop_map(|s| s * SECOND),
        1 => -90 * 86_400 * SECOND..90 * 86_400 * SECOND,
    ];
    prop::collection::vec((any::<Index>(), offset), 0..16)
}

/// The moments where the counted hits change, in `(from, until]`, with the
/// moments a microsecond before and a second after them.
fn breakpoints(m: &ScoringModel, hits: &[Hit], from: Timestamp, until: Timestamp) -> Vec<Timestamp> {
    let mut moments = Vec::new();
    for h in hits {
        let window = m.behavior[usize::from(h.rule)].window_days;
        for at in std::iter::once(h.at).chain(window.map(|w| h.at.minus_days(-w))) {
            moments.extend([plus(at, -1), at, plus(at, SECOND)]);
        }
    }
    moments.retain(|&t| t > from && t <= until);
    moments
}

/// `count` moments evenly spread over `(from, until]`.
fn spread(from: Timestamp, until: Timestamp, count: i64) -> impl Iterator<Item = Timestamp> {
    let span = until.as_micros() - from.as_micros();
    (1..=count).map(move |i| plus(from, span / count * i))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_next_change_is_a_change_and_the_first_one(
        m in arb_model(),
        held in prop::sample::subsequence(vec![0u16, 1, 2], 0..=3),
        raw in arb_hits(),
        from_offset in -10 * 86_400i64..10 * 86_400,
        horizon_secs in prop_oneof![1 => 1i64..600, 3 => 1i64..120 * 86_400],
    ) {
        let fit = FitOutcome { held };
        let hits: Vec<Hit> = raw
            .iter()
            .enumerate()
            .map(|(seq, (rule, offset))| Hit {
                rule: rule.index(m.behavior.len()) as u16,
                at: plus(t0(), *offset),
                seq: seq as u64,
            })
            .collect();
        let from = plus(t0(), from_offset * SECOND);
        let horizon = plus(from, horizon_secs * SECOND);
        let start = state(&m, &fit, &hits, from);

        let found = m.next_change(&fit, &hits, from, horizon);
        // Where nothing may have changed yet: before the change, or up to the horizon.
        let quiet_until = match found {
            Some(t) => {
                prop_assert!(from < t && t <= horizon, "{t} outside ({from}, {horizon}]");
                prop_assert_ne!(state(&m, &fit, &hits, t), start, "no change at {}", t);
                plus(t, -SECOND)
            }
            None => horizon,
        };
        if quiet_until > from {
            let mut probes: Vec<Timestamp> = spread(from, quiet_until, 64).collect();
            probes.extend(breakpoints(&m, &hits, from, quiet_until));
            probes.push(quiet_until);
            for t in probes {
                prop_assert_eq!(state(&m, &fit, &hits, t), start, "changed at {} already (found {:?})", t, found);
            }
        }
    }
}
