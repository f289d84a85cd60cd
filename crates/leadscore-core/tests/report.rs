//! The model report on a data set whose figures are worked out by hand.

use leadscore_core::report::{Case, auc, report};
use leadscore_core::{Lead, ScoringModel, StdField, Timestamp};

const MODEL: &str = r#"
name = "m"
[[band]]
name = "cold"
from = 0
[[band]]
name = "hot"
from = 10
[mql]
threshold = 10
[[fit]]
id = "ceo"
field = "job_title"
matches = "(?i)ceo"
points = 10
[[fit]]
id = "student"
field = "job_title"
matches = "(?i)student"
points = 5
[[behavior]]
id = "demo"
events = ["demo_requested"]
points = 20
"#;

/// 100 leads, one every 0.7 days: 50 CEOs (30 converted) and 50 others (5
/// converted), 10 of whom are students (1 converted).
fn cases() -> Vec<Case> {
    let start = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    (0..100)
        .map(|i| {
            let title = if i < 50 {
                "CEO"
            } else if i < 60 {
                "student"
            } else {
                "clerk"
            };
            let won = if i < 50 {
                i < 30
            } else if i < 60 {
                i == 50
            } else {
                i < 64
            };
            let created_at = Timestamp::from_micros(start.as_micros() + (i as f64 * 0.7 * 86_400e6) as i64);
            Case {
                lead: Lead::new(format!("L{i}")).with(StdField::JobTitle, title),
                events: Vec::new(),
                won,
                decided_at: Timestamp::from_micros(created_at.as_micros() + 30 * 86_400_000_000),
                created_at,
            }
        })
        .collect()
}

#[test]
fn figures_match_the_hand_count() {
    let model = ScoringModel::from_toml(MODEL, "m.toml").unwrap();
    let r = report(&model, &cases(), Some(6.0));
    assert_eq!((r.leads, r.conversions), (100, 35));
    assert!((r.base_rate - 0.35).abs() < 1e-12);
    let hot = &r.by_band[1];
    assert_eq!((hot.leads, hot.conversions), (50, 30));
    let cold = &r.by_band[0];
    assert_eq!((cold.leads, cold.conversions), (50, 5));
    let ceo = r.rules.iter().find(|x| x.rule == "ceo").unwrap();
    assert_eq!(ceo.fires, 50);
    assert_eq!(ceo.rate_when_fires, Some(0.6));
    assert_eq!(ceo.rate_when_not, Some(0.1));
    let expected: f64 = ((30.5 / 20.5) / (5.5 / 45.5_f64)).ln();
    assert!((ceo.log_odds.unwrap() - expected).abs() < 1e-12);
    assert_eq!(ceo.flag, None);
    let demo = r.rules.iter().find(|x| x.rule == "demo").unwrap();
    assert_eq!(demo.flag, Some("never_fires"));
    // Students: 1 of 10 against 34 of 90 elsewhere, a weak effect on 10 leads.
    let student = r.rules.iter().find(|x| x.rule == "student").unwrap();
    assert_eq!(student.fires, 10);
    assert_eq!(student.flag, Some("no_difference"), "{student:?}");
    // Only `ceo` has a clear effect, so it sets the scale: its suggestion is its own points.
    assert_eq!(ceo.suggested_points, Some(10.0));
    // Top 10 %: 10 CEOs; the sort keeps ties in input order, so the first 10 CEOs, all converted.
    assert_eq!(r.gains[0].leads, 10);
    assert_eq!(r.calibration.len(), 10);
    assert_eq!(r.calibration.iter().map(|d| d.leads).sum::<usize>(), 100);
    // 100 leads over 69.3 days (9.9 weeks); 6 a week fit the 50 CEOs at 10 points (5.05 a week).
    let a = r.mql_advice.as_ref().unwrap();
    assert_eq!(a.threshold, 10.0);
    assert!((a.mqls_per_week - 50.0 / 9.9).abs() < 1e-9, "{a:?}");
    assert_eq!(a.expected_conversion, Some(0.6));
    assert!(
        r.warnings.iter().any(|w| w.contains("at least 200")),
        "{:?}",
        r.warnings
    );
    // At 5 a week not even the CEOs fit: the advice is a threshold above every score.
    let tight = report(&model, &cases(), Some(5.0)).mql_advice.unwrap();
    assert!(tight.threshold > 10.0 && tight.mqls_per_week == 0.0, "{tight:?}");
}

#[test]
fn leads_are_scored_before_their_outcome() {
    let model = ScoringModel::from_toml(MODEL, "m.toml").unwrap();
    let mut c = cases();
    // A demo requested after the outcome was known counts nothing.
    let late = Timestamp::from_micros(c[60].decided_at.as_micros() + 1);
    c[60].events.push(leadscore_core::Event {
        id: "d1".into(),
        lead: "L60".into(),
        kind: "demo_requested".into(),
        occurred_at: late,
        properties: Default::default(),
    });
    let r = report(&model, &c, None);
    assert_eq!(r.rules.iter().find(|x| x.rule == "demo").unwrap().fires, 0);
    c[60].events[0].occurred_at = Timestamp::from_micros(c[60].decided_at.as_micros() - 10);
    let r = report(&model, &c, None);
    assert_eq!(r.rules.iter().find(|x| x.rule == "demo").unwrap().fires, 1);
}

#[test]
fn auc_of_the_hand_count() {
    let model = ScoringModel::from_toml(MODEL, "m.toml").unwrap();
    let r = report(&model, &cases(), None);
    // Scores: CEO 10, student 5, clerk 0. Positives: 30 CEO, 1 student, 4 clerks.
    // Negatives: 20 CEO, 9 students, 36 clerks.
    let wins = 30.0 * 45.0 + 1.0 * 36.0;
    let ties = 30.0 * 20.0 + 1.0 * 9.0 + 4.0 * 36.0;
    let expected = (wins + ties / 2.0) / (35.0 * 65.0);
    assert!(
        (r.auc.unwrap() - expected).abs() < 1e-12,
        "{:?} vs {expected}",
        r.auc
    );
    let pairs: Vec<(f64, bool)> = vec![(1.0, true), (0.0, false)];
    assert_eq!(auc(&pairs), Some(1.0));
}
