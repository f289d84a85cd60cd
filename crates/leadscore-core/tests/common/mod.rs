#![allow(dead_code)]

use std::collections::BTreeMap;

use leadscore_core::{Event, ScoringModel, Timestamp};

pub const SPEC_MODEL: &str = include_str!("../fixtures/spec-model.toml");

pub fn spec_model() -> ScoringModel {
    ScoringModel::from_toml(SPEC_MODEL, "spec-model.toml").expect("the spec's model is valid")
}

/// A model with the given rules appended to a minimal header.
pub fn model_with(rules: &str) -> ScoringModel {
    let text = format!(
        "name = \"t\"\n[[band]]\nname = \"cold\"\nfrom = 0\n[[band]]\nname = \"hot\"\nfrom = 50\n{rules}"
    );
    ScoringModel::from_toml(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"))
}

pub fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// The spec's T.
pub fn t0() -> Timestamp {
    ts("2026-11-01T00:00:00Z")
}

/// `days` before T (negative: after T).
pub fn days_before(days: f64) -> Timestamp {
    t0().minus_days(days)
}

pub fn event(id: &str, kind: &str, at: Timestamp, props: &[(&str, &str)]) -> Event {
    Event {
        id: id.to_owned(),
        lead: "L1".to_owned(),
        kind: kind.to_owned(),
        occurred_at: at,
        properties: props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}
