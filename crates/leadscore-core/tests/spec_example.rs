//! The worked example of `shared/spec/scoring-model.md`, to the last decimal.

mod common;

use common::*;
use leadscore_core::{Grade, Lead, RuleKind, StdField};

#[test]
fn worked_example_gives_the_stated_result() {
    let model = spec_model();
    let lead = Lead::new("L1")
        .with(StdField::JobTitle, "Founder & CEO")
        .with(StdField::Industry, "Travel")
        .with(StdField::Employees, "120")
        .with(StdField::Email, "lan@vietravel-corp.com")
        .with(StdField::Phone, "+84 912 345 678");
    let events = [
        event("e1", "email_clicked", days_before(30.0), &[]),
        event("e2", "email_clicked", days_before(60.0), &[]),
        event("e3", "page_viewed", days_before(10.0), &[("path", "/pricing")]),
        event("e4", "page_viewed", days_before(40.0), &[("path", "/pricing")]),
        event("e5", "demo_requested", days_before(2.0), &[]),
        event("e6", "demo_requested", days_before(20.0), &[]),
    ];
    let s = model.score(&lead, &events, t0());

    assert_eq!(s.fit, 23.0);
    assert_eq!(s.grade, Grade::B);
    assert_eq!(s.engagement, 22.75);
    assert_eq!(s.score, 45.75);
    assert_eq!(s.band_name(&model), "warm");
    assert!(!s.mql);

    let lines: Vec<(&str, RuleKind, f64, Option<u32>)> = s
        .breakdown
        .iter()
        .map(|c| (c.rule_id(&model), c.kind, c.points, c.events))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("demo_or_trial", RuleKind::Behavior, 15.0, Some(1)),
            ("decision_maker", RuleKind::Fit, 10.0, None),
            ("target_industry", RuleKind::Fit, 8.0, None),
            ("corporate_email", RuleKind::Fit, 5.0, None),
            ("pricing_page", RuleKind::Behavior, 4.0, Some(1)),
            ("email_click", RuleKind::Behavior, 3.75, Some(2)),
        ]
    );
}

#[test]
fn the_same_lead_without_a_phone_loses_three_points() {
    let model = spec_model();
    let lead = Lead::new("L1")
        .with(StdField::JobTitle, "CEO")
        .with(StdField::Email, "a@b-corp.com");
    let s = model.score(&lead, &[], t0());
    assert_eq!((s.fit, s.score), (12.0, 12.0)); // 10 + 5 - 3 = 12
    assert_eq!(s.grade, Grade::C);
    let no_phone = s
        .breakdown
        .iter()
        .find(|c| c.rule_id(&model) == "no_phone")
        .unwrap();
    assert_eq!(no_phone.points, -3.0);
}
