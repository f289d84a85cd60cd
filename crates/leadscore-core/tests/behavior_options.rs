//! Behavior rules and totals per `shared/spec/scoring-model.md` ("Behavior semantics",
//! "Totals, rounding, band, grade, MQL"): every option, its edges, and how the
//! rounded numbers decide band, grade and MQL.

mod common;

use common::*;
use leadscore_core::{Event, Grade, Lead, RuleKind, Score, ScoringModel, StdField, Timestamp};

const SECOND: f64 = 1.0 / 86_400.0;

/// Scores a lead with no fit data under a model with one behavior rule `r`.
fn score_rule(rule: &str, events: &[Event]) -> Score {
    let model = model_with(&format!("[[behavior]]\nid = \"r\"\n{rule}\n"));
    model.score(&Lead::new("L1"), events, t0())
}

/// What rule `r` contributed: (rounded points, events counted); (0, 0) when it is
/// not in the breakdown (contributions that round to zero are left out).
#[track_caller]
fn contribution(rule: &str, events: &[Event]) -> (f64, u32) {
    let s = score_rule(rule, events);
    assert!(s.breakdown.len() <= 1, "{:?}", s.breakdown);
    match s.breakdown.first() {
        Some(c) => {
            assert_eq!(c.kind, RuleKind::Behavior);
            assert_eq!(c.points, s.engagement, "a lone rule's line equals the engagement");
            (c.points, c.events.expect("behavior lines count events"))
        }
        None => {
            assert_eq!(s.engagement, 0.0);
            (0.0, 0)
        }
    }
}

#[track_caller]
fn check(rule: &str, events: &[Event], expected: (f64, u32)) {
    assert_eq!(
        contribution(rule, events),
        expected,
        "rule:\n{rule}\nevents: {events:#?}"
    );
}

fn ev(id: &str, kind: &str, days: f64) -> Event {
    event(id, kind, days_before(days), &[])
}

fn evp(id: &str, kind: &str, days: f64, props: &[(&str, &str)]) -> Event {
    event(id, kind, days_before(days), props)
}

/// A full model: `[score]` from `min` to `max`, the spec's bands scaled into it, and `extra`.
fn model(extra: &str) -> ScoringModel {
    let text = format!(
        "name = \"m\"\n\
         [[band]]\nname = \"cold\"\nfrom = 0\n\
         [[band]]\nname = \"warm\"\nfrom = 25\n\
         [[band]]\nname = \"hot\"\nfrom = 50\n\
         [[band]]\nname = \"very_hot\"\nfrom = 76\n\
         {extra}\n"
    );
    ScoringModel::from_toml(&text, "m.toml").unwrap_or_else(|e| panic!("{e}"))
}

// ---------------------------------------------------------------- event types

#[test]
fn events_list_with_several_types() {
    let rule = "events = [\"demo_requested\", \"trial_started\", \"call_held\"]\npoints = 2";
    check(
        rule,
        &[
            ev("1", "demo_requested", 1.0),
            ev("2", "trial_started", 2.0),
            ev("3", "call_held", 3.0),
            ev("4", "email_opened", 4.0),
            ev("5", "demo_requested", 5.0),
        ],
        (8.0, 4),
    );
    check(
        rule,
        &[ev("1", "email_opened", 1.0), ev("2", "Demo_Requested", 1.0)],
        (0.0, 0),
    );
    check(rule, &[], (0.0, 0));
}

#[test]
fn a_type_listed_twice_still_counts_each_event_once() {
    check(
        "events = [\"a\", \"a\", \"b\"]\npoints = 3",
        &[ev("1", "a", 1.0), ev("2", "b", 1.0)],
        (6.0, 2),
    );
}

#[test]
fn one_event_counts_for_every_rule_that_lists_it() {
    let model = model_with(
        "[[behavior]]\nid = \"any_page\"\nevents = [\"page_viewed\"]\npoints = 1\n\
         [[behavior]]\nid = \"pricing\"\nevents = [\"page_viewed\"]\nwhere = { path = \"/pricing\" }\npoints = 4\n\
         [[behavior]]\nid = \"pages_or_clicks\"\nevents = [\"email_clicked\", \"page_viewed\"]\npoints = 2\n",
    );
    let events = [
        evp("1", "page_viewed", 1.0, &[("path", "/pricing")]),
        evp("2", "page_viewed", 2.0, &[("path", "/")]),
    ];
    let s = model.score(&Lead::new("L1"), &events, t0());
    assert_eq!(s.engagement, 2.0 + 4.0 + 4.0);
    let lines: Vec<(&str, f64, Option<u32>)> = s
        .breakdown
        .iter()
        .map(|c| (c.rule_id(&model), c.points, c.events))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("pricing", 4.0, Some(1)),
            ("pages_or_clicks", 4.0, Some(2)),
            ("any_page", 2.0, Some(2))
        ]
    );
}

// ---------------------------------------------------------------- where

#[test]
fn where_requires_every_listed_property() {
    let rule = "events = [\"page_viewed\"]\nwhere = { path = \"/pricing\", plan = \"pro\" }\npoints = 4";
    let cases: [(&[(&str, &str)], bool); 8] = [
        (&[("path", "/pricing"), ("plan", "pro")], true),
        (&[("path", "/pricing"), ("plan", "pro"), ("utm", "x")], true), // extra properties do not matter
        (&[("path", "/pricing")], false),                               // missing property fails
        (&[("plan", "pro")], false),
        (&[], false),
        (&[("path", "/pricing"), ("plan", "team")], false),
        (&[("path", "/Pricing"), ("plan", "pro")], false), // string compare: case matters
        (&[("path", "/pricing "), ("plan", "pro")], false), // and so does white space
    ];
    for (props, counts) in cases {
        let expected = if counts { (4.0, 1) } else { (0.0, 0) };
        check(rule, &[evp("1", "page_viewed", 1.0, props)], expected);
    }
}

#[test]
fn where_with_numbers_and_booleans_compares_their_spelling() {
    let n = "events = [\"form_submitted\"]\nwhere = { n = 5 }\npoints = 1";
    check(n, &[evp("1", "form_submitted", 1.0, &[("n", "5")])], (1.0, 1));
    check(n, &[evp("1", "form_submitted", 1.0, &[("n", "6")])], (0.0, 0));
    check(n, &[evp("1", "form_submitted", 1.0, &[("m", "5")])], (0.0, 0));
    let f = "events = [\"form_submitted\"]\nwhere = { ratio = 2.5 }\npoints = 1";
    check(
        f,
        &[evp("1", "form_submitted", 1.0, &[("ratio", "2.5")])],
        (1.0, 1),
    );
    let b = "events = [\"form_submitted\"]\nwhere = { first = true }\npoints = 1";
    check(
        b,
        &[evp("1", "form_submitted", 1.0, &[("first", "true")])],
        (1.0, 1),
    );
    check(
        b,
        &[evp("1", "form_submitted", 1.0, &[("first", "false")])],
        (0.0, 0),
    );
}

#[test]
fn where_filters_before_max_events() {
    // The newest page view is not /pricing, so it does not take the one slot.
    let rule = "events = [\"page_viewed\"]\nwhere = { path = \"/pricing\" }\npoints = 8\nmax_events = 1\nhalf_life_days = 30";
    let events = [
        evp("1", "page_viewed", 30.0, &[("path", "/pricing")]),
        evp("2", "page_viewed", 1.0, &[("path", "/blog")]),
    ];
    check(rule, &events, (4.0, 1));
}

// ---------------------------------------------------------------- window_days

#[test]
fn window_edge_counts_nothing_and_just_inside_counts() {
    let rule = "events = [\"page_viewed\"]\npoints = 4\nwindow_days = 30";
    check(rule, &[ev("1", "page_viewed", 30.0)], (0.0, 0)); // occurred_at == T - 30d
    check(rule, &[ev("1", "page_viewed", 30.0 - SECOND)], (4.0, 1));
    check(rule, &[ev("1", "page_viewed", 30.0 + SECOND)], (0.0, 0));
    check(rule, &[ev("1", "page_viewed", 0.0)], (4.0, 1));
    check(
        rule,
        &[
            ev("1", "page_viewed", 29.0),
            ev("2", "page_viewed", 30.0),
            ev("3", "page_viewed", 31.0),
            ev("4", "page_viewed", 5.0),
        ],
        (8.0, 2),
    );
}

#[test]
fn window_edge_at_microsecond_precision() {
    let rule = "events = [\"page_viewed\"]\npoints = 4\nwindow_days = 1";
    let edge = t0().minus_days(1.0);
    let just_inside = Timestamp::from_micros(edge.as_micros() + 1);
    check(rule, &[event("1", "page_viewed", edge, &[])], (0.0, 0));
    check(rule, &[event("1", "page_viewed", just_inside, &[])], (4.0, 1));
}

#[test]
fn fractional_window() {
    let rule = "events = [\"page_viewed\"]\npoints = 4\nwindow_days = 0.5";
    check(rule, &[ev("1", "page_viewed", 0.5)], (0.0, 0));
    check(rule, &[ev("1", "page_viewed", 0.5 - SECOND)], (4.0, 1));
    check(rule, &[ev("1", "page_viewed", 0.25)], (4.0, 1));
}

// ---------------------------------------------------------------- half_life_days

#[test]
fn half_life_exact_decay() {
    let rule = "events = [\"email_clicked\"]\npoints = 5\nhalf_life_days = 30";
    check(rule, &[ev("1", "email_clicked", 0.0)], (5.0, 1));
    check(rule, &[ev("1", "email_clicked", 30.0)], (2.5, 1));
    check(rule, &[ev("1", "email_clicked", 60.0)], (1.25, 1));
    check(rule, &[ev("1", "email_clicked", 90.0)], (0.63, 1)); // 0.625 rounds half away from zero
    check(rule, &[ev("1", "email_clicked", 15.0)], (3.54, 1)); // 5 * 0.5^0.5 = 3.5355...
    check(
        rule,
        &[ev("1", "email_clicked", 30.0), ev("2", "email_clicked", 60.0)],
        (3.75, 2),
    );
    // Decay never reaches zero, but a line that rounds to zero is left out.
    check(rule, &[ev("1", "email_clicked", 600.0)], (0.0, 0));
}

#[test]
fn half_life_uses_fractional_days() {
    let rule = "events = [\"email_clicked\"]\npoints = 8\nhalf_life_days = 1";
    check(rule, &[ev("1", "email_clicked", 0.5)], (5.66, 1)); // 8 * 0.5^0.5 = 5.6568...
    check(rule, &[ev("1", "email_clicked", 1.5)], (2.83, 1)); // 8 * 0.5^1.5 = 2.8284...
    // 12 hours expressed as a timestamp, not as a day count.
    let at = Timestamp::from_micros(t0().as_micros() - 12 * 3600 * 1_000_000);
    check(rule, &[event("1", "email_clicked", at, &[])], (5.66, 1));
}

#[test]
fn half_life_on_negative_points() {
    let rule = "events = [\"meeting_missed\"]\npoints = -6\nhalf_life_days = 10";
    let s = score_rule(
        rule,
        &[ev("1", "meeting_missed", 10.0), ev("2", "meeting_missed", 20.0)],
    );
    assert_eq!(s.engagement, -4.5);
    assert_eq!(s.breakdown[0].points, -4.5);
    assert_eq!(s.score, 0.0); // clamped to score.min
}

#[test]
fn half_life_with_window() {
    let rule = "events = [\"email_clicked\"]\npoints = 4\nhalf_life_days = 10\nwindow_days = 20";
    check(
        rule,
        &[
            ev("1", "email_clicked", 10.0),
            ev("2", "email_clicked", 20.0),
            ev("3", "email_clicked", 0.0),
        ],
        (6.0, 2),
    );
}

// ---------------------------------------------------------------- max_events

#[test]
fn max_events_keeps_the_most_recent() {
    let rule = "events = [\"email_clicked\"]\npoints = 8\nhalf_life_days = 30\nmax_events = 2";
    // Given oldest-first, newest-first and mixed: the T-0 and T-30 clicks count.
    let a = ev("a", "email_clicked", 0.0);
    let b = ev("b", "email_clicked", 30.0);
    let c = ev("c", "email_clicked", 60.0);
    let d = ev("d", "email_clicked", 90.0);
    for order in [
        vec![&a, &b, &c, &d],
        vec![&d, &c, &b, &a],
        vec![&c, &a, &d, &b],
        vec![&b, &d, &a, &c],
    ] {
        let events: Vec<Event> = order.into_iter().cloned().collect();
        check(rule, &events, (12.0, 2));
    }
    check(rule, std::slice::from_ref(&c), (2.0, 1));
    check(
        "events = [\"x\"]\npoints = 3\nmax_events = 1",
        &[ev("1", "x", 1.0), ev("2", "x", 2.0)],
        (3.0, 1),
    );
    check(
        "events = [\"x\"]\npoints = 3\nmax_events = 5",
        &[ev("1", "x", 1.0), ev("2", "x", 2.0)],
        (6.0, 2),
    );
}

#[test]
fn max_events_applies_after_the_window_and_as_of() {
    let rule = "events = [\"x\"]\npoints = 8\nhalf_life_days = 30\nmax_events = 1\nwindow_days = 45";
    // The future event does not take the slot; the T-30d one does.
    check(
        rule,
        &[ev("f", "x", -1.0), ev("1", "x", 30.0), ev("2", "x", 60.0)],
        (4.0, 1),
    );
    // Nothing inside the window: nothing counts, even with a free slot.
    check(rule, &[ev("2", "x", 60.0), ev("3", "x", 45.0)], (0.0, 0));
    // Several inside the window, only the newest counts.
    check(
        rule,
        &[ev("1", "x", 30.0), ev("4", "x", 44.0), ev("5", "x", 50.0)],
        (4.0, 1),
    );
}

#[test]
fn max_events_ties_on_occurred_at() {
    // Two events at the same instant compete for the last slot: exactly one counts.
    let rule = "events = [\"x\"]\npoints = 8\nhalf_life_days = 30\nmax_events = 2";
    let events = [
        ev("new", "x", 0.0),
        ev("tie1", "x", 30.0),
        ev("tie2", "x", 30.0),
        ev("old", "x", 60.0),
    ];
    check(rule, &events, (12.0, 2));
    let events = [
        ev("tie1", "x", 30.0),
        ev("tie2", "x", 30.0),
        ev("tie3", "x", 30.0),
    ];
    check(rule, &events, (8.0, 2));
    check(
        "events = [\"x\"]\npoints = 8\nmax_events = 1",
        &[ev("a", "x", 3.0), ev("b", "x", 3.0)],
        (8.0, 1),
    );
}

#[test]
fn max_events_tie_is_won_by_the_later_ingested_event() {
    // Both tied events go through the public engine; whichever wins, its contribution is
    // the same (same instant, same rule), so the result must not depend on the order.
    let rule = "events = [\"x\", \"y\"]\npoints = 8\nhalf_life_days = 30\nmax_events = 1";
    let x = ev("x1", "x", 30.0);
    let y = ev("y1", "y", 30.0);
    check(rule, &[x.clone(), y.clone()], (4.0, 1));
    check(rule, &[y, x], (4.0, 1));

    // At the level of the engine's hits, the later `seq` is the one kept: it is sorted first.
    let model = model_with(&format!("[[behavior]]\nid = \"r\"\n{rule}\n"));
    let at = days_before(30.0);
    let mut hits = [
        leadscore_core::Hit { rule: 0, at, seq: 1 },
        leadscore_core::Hit { rule: 0, at, seq: 7 },
        leadscore_core::Hit { rule: 0, at, seq: 3 },
    ];
    let s = model.score_hits(&Default::default(), &mut hits, t0());
    assert_eq!(s.engagement, 4.0);
    assert_eq!(
        hits[0].seq, 7,
        "the later-ingested hit leads its rule's newest-first order"
    );
}

// ---------------------------------------------------------------- cap

#[test]
fn cap_on_positive_sums() {
    let rule = "events = [\"email_clicked\"]\npoints = 5\ncap = 15";
    let clicks = |n: usize| {
        (0..n)
            .map(|i| ev(&format!("c{i}"), "email_clicked", i as f64 + 1.0))
            .collect::<Vec<_>>()
    };
    check(rule, &clicks(1), (5.0, 1));
    check(rule, &clicks(2), (10.0, 2));
    check(rule, &clicks(3), (15.0, 3));
    check(rule, &clicks(4), (15.0, 4)); // every event counted, the sum capped
    check(rule, &clicks(10), (15.0, 10));
}

#[test]
fn cap_on_negative_sums() {
    let rule = "events = [\"meeting_missed\"]\npoints = -10\ncap = 15";
    let events = [
        ev("1", "meeting_missed", 1.0),
        ev("2", "meeting_missed", 2.0),
        ev("3", "meeting_missed", 3.0),
    ];
    check(rule, &events, (-15.0, 3));
    check(rule, &events[..1], (-10.0, 1));
    let s = score_rule(rule, &events);
    assert_eq!((s.engagement, s.score), (-15.0, 0.0));
}

#[test]
fn cap_applies_after_decay() {
    let rule = "events = [\"email_clicked\"]\npoints = 10\ncap = 12\nhalf_life_days = 30";
    check(
        rule,
        &[ev("1", "email_clicked", 30.0), ev("2", "email_clicked", 60.0)],
        (7.5, 2),
    ); // under the cap
    check(
        rule,
        &[ev("1", "email_clicked", 0.0), ev("2", "email_clicked", 30.0)],
        (12.0, 2),
    ); // 15 capped
    check(
        "events = [\"x\"]\npoints = 4\ncap = 2.5",
        &[ev("1", "x", 1.0)],
        (2.5, 1),
    );
}

// ---------------------------------------------------------------- as_of and duplicates

#[test]
fn events_after_as_of_are_ignored() {
    let rule = "events = [\"x\"]\npoints = 3";
    check(rule, &[ev("1", "x", -1.0)], (0.0, 0));
    check(rule, &[ev("1", "x", -SECOND)], (0.0, 0));
    check(rule, &[ev("1", "x", 0.0)], (3.0, 1)); // occurred_at == T counts
    check(
        rule,
        &[ev("1", "x", -100.0), ev("2", "x", 1.0), ev("3", "x", -0.5)],
        (3.0, 1),
    );
    let future = Timestamp::from_micros(t0().as_micros() + 1);
    check(rule, &[event("1", "x", future, &[])], (0.0, 0));
    // An event at T has age 0: full points, even with a half-life.
    check(
        "events = [\"x\"]\npoints = 3\nhalf_life_days = 1",
        &[ev("1", "x", 0.0)],
        (3.0, 1),
    );
}

#[test]
fn the_same_event_id_twice_counts_once_and_the_first_wins() {
    let rule = "events = [\"email_clicked\"]\npoints = 5\nhalf_life_days = 30";
    let first = ev("e1", "email_clicked", 30.0);
    let again = ev("e1", "email_clicked", 30.0);
    check(rule, &[first.clone(), again], (2.5, 1));
    // A later copy with another time does not replace the first.
    check(rule, &[first.clone(), ev("e1", "email_clicked", 0.0)], (2.5, 1));
    check(rule, &[ev("e1", "email_clicked", 0.0), first.clone()], (5.0, 1));
    // Nor one with another type or properties.
    check(rule, &[ev("e1", "page_viewed", 1.0), first.clone()], (0.0, 0));
    check(rule, &[first.clone(), ev("e1", "page_viewed", 1.0)], (2.5, 1));
    // Distinct ids are distinct events, even when identical otherwise.
    check(rule, &[first, ev("e2", "email_clicked", 30.0)], (5.0, 2));
}

#[test]
fn a_duplicate_id_counts_once_across_rules() {
    let model = model_with(
        "[[behavior]]\nid = \"clicks\"\nevents = [\"email_clicked\"]\npoints = 5\n\
         [[behavior]]\nid = \"demo\"\nevents = [\"demo_requested\"]\npoints = 15\n",
    );
    let events = [
        ev("same", "email_clicked", 1.0),
        ev("same", "demo_requested", 1.0),
    ];
    let s = model.score(&Lead::new("L1"), &events, t0());
    assert_eq!(s.engagement, 5.0);
    let ids: Vec<&str> = s.breakdown.iter().map(|c| c.rule_id(&model)).collect();
    assert_eq!(ids, ["clicks"]);
}

// ---------------------------------------------------------------- totals: clamping and rounding

#[test]
fn total_is_clamped_to_the_score_range() {
    let m = model(
        "[score]\nmin = 0\nmax = 100\n\
         [[fit]]\nid = \"ceo\"\nfield = \"job_title\"\nmatches = \"CEO\"\npoints = 60\n\
         [[behavior]]\nid = \"demo\"\nevents = [\"demo_requested\"]\npoints = 30\n\
         [[behavior]]\nid = \"unsub\"\nevents = [\"unsubscribed\"]\npoints = -200\n",
    );
    let ceo = Lead::new("L1").with(StdField::JobTitle, "CEO");
    let demos = [ev("1", "demo_requested", 1.0), ev("2", "demo_requested", 2.0)];
    let s = m.score(&ceo, &demos, t0());
    assert_eq!((s.fit, s.engagement, s.score), (60.0, 60.0, 100.0));
    assert_eq!(s.band_name(&m), "very_hot");

    let s = m.score(&ceo, &[ev("u", "unsubscribed", 1.0)], t0());
    assert_eq!((s.fit, s.engagement, s.score), (60.0, -200.0, 0.0));
    assert_eq!(s.band_name(&m), "cold");
    // The breakdown still explains the unclamped contributions.
    let lines: Vec<(&str, f64)> = s.breakdown.iter().map(|c| (c.rule_id(&m), c.points)).collect();
    assert_eq!(lines, vec![("unsub", -200.0), ("ceo", 60.0)]);
}

#[test]
fn total_is_clamped_to_a_custom_range() {
    let text = "name = \"narrow\"\n[score]\nmin = -10\nmax = 20\n\
                [[band]]\nname = \"negative\"\nfrom = -10\n[[band]]\nname = \"neutral\"\nfrom = 0\n\
                [[band]]\nname = \"top\"\nfrom = 20\n\
                [[behavior]]\nid = \"x\"\nevents = [\"x\"]\npoints = 7\n\
                [[behavior]]\nid = \"bad\"\nevents = [\"bad\"]\npoints = -7\n";
    let m = ScoringModel::from_toml(text, "narrow.toml").unwrap();
    let l = Lead::new("L1");
    let xs = |n: usize| (0..n).map(|i| ev(&format!("x{i}"), "x", 1.0)).collect::<Vec<_>>();
    let bads = |n: usize| {
        (0..n)
            .map(|i| ev(&format!("b{i}"), "bad", 1.0))
            .collect::<Vec<_>>()
    };
    let s = m.score(&l, &xs(2), t0());
    assert_eq!((s.score, s.band_name(&m)), (14.0, "neutral"));
    let s = m.score(&l, &xs(3), t0());
    assert_eq!((s.score, s.engagement, s.band_name(&m)), (20.0, 21.0, "top"));
    let s = m.score(&l, &bads(1), t0());
    assert_eq!((s.score, s.band_name(&m)), (-7.0, "negative"));
    let s = m.score(&l, &bads(2), t0());
    assert_eq!(
        (s.score, s.engagement, s.band_name(&m)),
        (-10.0, -14.0, "negative")
    );
    let s = m.score(&l, &[], t0());
    assert_eq!((s.score, s.band_name(&m)), (0.0, "neutral"));
}

#[test]
fn rounding_is_half_away_from_zero() {
    // A 30-day half-life at 30 days halves the points exactly, landing on x.xx5.
    let at_half_life = [ev("1", "x", 30.0)];
    for (points, expected) in [
        ("2.25", 1.13),   // 1.125
        ("-2.25", -1.13), // -1.125
        ("1.01", 0.51),   // 0.505
        ("-1.01", -0.51), // -0.505
        ("0.01", 0.01),   // 0.005
        ("-0.01", -0.01), // -0.005
        ("2.23", 1.12),   // 1.115
        ("5.35", 2.68),   // 2.675, stored as 2.67499999...
        ("19.99", 10.0),  // 9.995
        ("2.2", 1.1),     // not a half: plain
        ("2.218", 1.11),  // 1.109
    ] {
        let rule = format!("events = [\"x\"]\npoints = {points}\nhalf_life_days = 30");
        let s = score_rule(&rule, &at_half_life);
        assert_eq!(s.engagement, expected, "points {points}");
        assert_eq!(
            s.breakdown.first().map(|c| c.points),
            Some(expected),
            "points {points}"
        );
        assert_eq!(s.score, expected.max(0.0), "points {points}");
    }
}

#[test]
fn rounding_of_fit_points() {
    let m = model_with("[[fit]]\nid = \"f\"\nfield = \"industry\"\nexists = true\npoints = 0.125\n");
    let s = m.score(&Lead::new("L1").with(StdField::Industry, "x"), &[], t0());
    assert_eq!((s.fit, s.score, s.breakdown[0].points), (0.13, 0.13, 0.13));
    // A contribution rounding to zero is left out of the breakdown.
    let m = model_with("[[fit]]\nid = \"f\"\nfield = \"industry\"\nexists = true\npoints = 0.004\n");
    let s = m.score(&Lead::new("L1").with(StdField::Industry, "x"), &[], t0());
    assert_eq!((s.fit, s.score), (0.0, 0.0));
    assert!(s.breakdown.is_empty());
}

#[test]
fn the_total_is_rounded_once_from_the_unrounded_sum() {
    // Three rules of 0.3333... each: 1.0 in total, though each line shows 0.33.
    let m = model_with(
        "[[behavior]]\nid = \"a\"\nevents = [\"a\"]\npoints = 0.3333333333\n\
         [[behavior]]\nid = \"b\"\nevents = [\"b\"]\npoints = 0.3333333333\n\
         [[behavior]]\nid = \"c\"\nevents = [\"c\"]\npoints = 0.3333333334\n",
    );
    let s = m.score(
        &Lead::new("L1"),
        &[ev("1", "a", 1.0), ev("2", "b", 1.0), ev("3", "c", 1.0)],
        t0(),
    );
    assert_eq!((s.engagement, s.score), (1.0, 1.0));
    assert!(s.breakdown.iter().all(|c| c.points == 0.33));
}

// ---------------------------------------------------------------- band, grade, MQL on rounded values

const GRADED: &str = "[mql]\nthreshold = 50\n[grade]\nA = 25\nB = 15\nC = 8\n";

#[test]
fn band_and_mql_are_decided_on_the_rounded_total() {
    let m = model(&format!(
        "{GRADED}\
         [[behavior]]\nid = \"near\"\nevents = [\"near\"]\npoints = 99.99\nhalf_life_days = 1\n\
         [[behavior]]\nid = \"below\"\nevents = [\"below\"]\npoints = 99.988\nhalf_life_days = 1\n"
    ));
    // 99.99 * 0.5 = 49.995 -> 50.00: hot and MQL.
    let s = m.score(&Lead::new("L1"), &[ev("1", "near", 1.0)], t0());
    assert_eq!(s.score, 50.0);
    assert_eq!(s.band_name(&m), "hot");
    assert!(s.mql);
    // 99.988 * 0.5 = 49.994 -> 49.99: warm, not MQL.
    let s = m.score(&Lead::new("L1"), &[ev("1", "below", 1.0)], t0());
    assert_eq!(s.score, 49.99);
    assert_eq!(s.band_name(&m), "warm");
    assert!(!s.mql);
}

#[test]
fn band_edges_are_inclusive_lower_bounds() {
    let m = model(&format!(
        "{GRADED}[[behavior]]\nid = \"x\"\nevents = [\"x\"]\npoints = 1\n"
    ));
    let l = Lead::new("L1");
    for (n, band) in [
        (0, "cold"),
        (24, "cold"),
        (25, "warm"),
        (49, "warm"),
        (50, "hot"),
        (75, "hot"),
        (76, "very_hot"),
        (100, "very_hot"),
        (150, "very_hot"),
    ] {
        let events: Vec<Event> = (0..n).map(|i| ev(&format!("e{i}"), "x", 1.0)).collect();
        let s = m.score(&l, &events, t0());
        assert_eq!(s.band_name(&m), band, "{n} events");
        assert_eq!(s.score, f64::from(n.min(100)));
        assert_eq!(s.mql, n >= 50, "{n} events");
    }
}

#[test]
fn grade_is_decided_on_the_rounded_fit() {
    let m = model(&format!(
        "{GRADED}\
         [[fit]]\nid = \"a\"\nfield = \"job_title\"\nexists = true\npoints = 14.995\n\
         [[fit]]\nid = \"b\"\nfield = \"industry\"\nexists = true\npoints = 7.994\n\
         [[fit]]\nid = \"c\"\nfield = \"company\"\nexists = true\npoints = 10.005\n"
    ));
    let grade = |fields: &[(StdField, &str)]| {
        let l = fields.iter().fold(Lead::new("L1"), |l, (f, v)| l.with(*f, *v));
        let s = m.score(&l, &[], t0());
        (s.fit, s.grade)
    };
    assert_eq!(grade(&[(StdField::JobTitle, "CEO")]), (15.0, Grade::B)); // 14.995 -> 15.00
    assert_eq!(grade(&[(StdField::Industry, "x")]), (7.99, Grade::D)); // 7.994 -> 7.99
    assert_eq!(grade(&[(StdField::Company, "x")]), (10.01, Grade::C));
    assert_eq!(
        grade(&[(StdField::JobTitle, "CEO"), (StdField::Company, "x")]),
        (25.0, Grade::A)
    ); // 25.000
    assert_eq!(grade(&[]), (0.0, Grade::D));
}

#[test]
fn grade_bounds_are_inclusive() {
    // One model per fit value; the grade depends on the fit alone.
    for (fit, expected) in [
        (30.0, Grade::A),
        (25.0, Grade::A),
        (24.99, Grade::B),
        (15.0, Grade::B),
        (14.99, Grade::C),
        (8.0, Grade::C),
        (7.99, Grade::D),
        (0.0, Grade::D),
        (-5.0, Grade::D),
    ] {
        let m = model(&format!(
            "{GRADED}[[fit]]\nid = \"f\"\nfield = \"industry\"\nexists = true\npoints = {fit:?}\n"
        ));
        let s = m.score(&Lead::new("L1").with(StdField::Industry, "x"), &[], t0());
        assert_eq!(s.grade, expected, "fit {fit}");
    }
}

#[test]
fn mql_min_grade() {
    // fit from the industry rule decides the grade; events push the total over 50.
    let m = |min_grade: &str, fit: f64| {
        model(&format!(
            "[mql]\nthreshold = 50\nmin_grade = \"{min_grade}\"\n[grade]\nA = 25\nB = 15\nC = 8\n\
             [[fit]]\nid = \"f\"\nfield = \"industry\"\nexists = true\npoints = {fit:?}\n\
             [[behavior]]\nid = \"x\"\nevents = [\"x\"]\npoints = 60\n"
        ))
    };
    let l = Lead::new("L1").with(StdField::Industry, "software");
    let pushed = [ev("1", "x", 1.0)];
    for (min_grade, fit, grade, mql) in [
        ("B", 30.0, Grade::A, true),
        ("B", 15.0, Grade::B, true),
        ("B", 10.0, Grade::C, false),
        ("B", 0.0, Grade::D, false),
        ("A", 25.0, Grade::A, true),
        ("A", 24.0, Grade::B, false),
        ("C", 8.0, Grade::C, true),
        ("C", 7.0, Grade::D, false),
        ("D", 0.0, Grade::D, true),
        ("b", 15.0, Grade::B, true), // the letter's case does not matter
    ] {
        let model = m(min_grade, fit);
        let s = model.score(&l, &pushed, t0());
        assert_eq!(s.grade, grade, "min_grade {min_grade}, fit {fit}");
        assert_eq!(s.mql, mql, "min_grade {min_grade}, fit {fit}");
        // Under the threshold nobody is MQL, whatever the grade.
        assert!(!model.score(&l, &[], t0()).mql);
    }
}

#[test]
fn a_model_without_grade_grades_everything_d() {
    let m = model(
        "[mql]\nthreshold = 10\n\
         [[fit]]\nid = \"f\"\nfield = \"industry\"\nexists = true\npoints = 100\n",
    );
    let s = m.score(&Lead::new("L1").with(StdField::Industry, "x"), &[], t0());
    assert_eq!((s.fit, s.score, s.grade), (100.0, 100.0, Grade::D));
    assert!(s.mql, "mql without min_grade needs no grade");
    let s = m.score(&Lead::new("L1"), &[], t0());
    assert_eq!(s.grade, Grade::D);
    assert!(!s.mql);
}

#[test]
fn a_model_without_grade_and_min_grade_d_still_mqls() {
    let m = model(
        "[mql]\nthreshold = 10\nmin_grade = \"D\"\n\
         [[fit]]\nid = \"f\"\nfield = \"industry\"\nexists = true\npoints = 20\n",
    );
    let s = m.score(&Lead::new("L1").with(StdField::Industry, "x"), &[], t0());
    assert_eq!(s.grade, Grade::D);
    assert!(s.mql);
}

#[test]
fn a_model_without_mql_makes_nobody_mql() {
    let m = model(
        "[grade]\nA = 25\nB = 15\nC = 8\n\
         [[fit]]\nid = \"f\"\nfield = \"industry\"\nexists = true\npoints = 100\n",
    );
    let s = m.score(&Lead::new("L1").with(StdField::Industry, "x"), &[], t0());
    assert_eq!((s.score, s.grade, s.band_name(&m)), (100.0, Grade::A, "very_hot"));
    assert!(!s.mql);
}

#[test]
fn mql_threshold_is_inclusive() {
    let m = model("[mql]\nthreshold = 42.5\n[[behavior]]\nid = \"x\"\nevents = [\"x\"]\npoints = 42.5\n");
    assert!(m.score(&Lead::new("L1"), &[ev("1", "x", 1.0)], t0()).mql);
    let m = model("[mql]\nthreshold = 42.5\n[[behavior]]\nid = \"x\"\nevents = [\"x\"]\npoints = 42.49\n");
    assert!(!m.score(&Lead::new("L1"), &[ev("1", "x", 1.0)], t0()).mql);
}

// ---------------------------------------------------------------- the explanation

#[test]
fn breakdown_counts_events_after_window_and_max_events() {
    let m = spec_model();
    let events = [
        evp("p1", "page_viewed", 5.0, &[("path", "/pricing")]),
        evp("p2", "page_viewed", 10.0, &[("path", "/pricing")]),
        evp("p3", "page_viewed", 40.0, &[("path", "/pricing")]),
        evp("p4", "page_viewed", 1.0, &[("path", "/blog")]),
        ev("d1", "demo_requested", 2.0),
        ev("d2", "trial_started", 3.0),
        ev("d3", "demo_requested", 50.0),
        ev("u1", "unsubscribed", 1.0),
        ev("u2", "unsubscribed", 2.0),
    ];
    let s = m.score(&Lead::new("L1"), &events, t0());
    let lines: Vec<(&str, f64, Option<u32>)> = s
        .breakdown
        .iter()
        .map(|c| (c.rule_id(&m), c.points, c.events))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("demo_or_trial", 15.0, Some(1)),
            ("unsubscribed", -10.0, Some(1)),
            ("pricing_page", 8.0, Some(2)),
            ("no_phone", -3.0, None),
        ]
    );
    assert_eq!((s.fit, s.engagement, s.score), (-3.0, 13.0, 10.0));
}
