//! `serve --demo`: sample leads, events and a model, loaded on first start so
//! a newcomer sees scored leads at once.

use std::sync::Arc;

use leadscore_core::ScoringModel;
use leadscore_store::{Store, StoreError};

pub const MODEL: &str = include_str!("../../../examples/model.toml");
pub const LEADS: &str = include_str!("../../../examples/leads.csv");
pub const EVENTS: &str = include_str!("../../../examples/events.jsonl");

/// Loads the samples into an empty database; a database with leads is left
/// as it is. Returns whether anything was loaded.
pub async fn load(store: &Arc<dyn Store>, now: leadscore_core::Timestamp) -> Result<bool, StoreError> {
    if store.counts().await?.0 > 0 {
        return Ok(false);
    }
    let model = ScoringModel::from_toml(MODEL, "examples/model.toml")
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    store.put_model(&model.name, MODEL, now).await?;
    let at = store.activate_model(&model.name, now, false).await?;
    let rows = crate::import::read_csv(LEADS).map_err(StoreError::Invalid)?;
    let policy = leadscore_core::workflow::RatingPolicy::default();
    crate::import::import(store, rows, true, now, usize::MAX, &policy, &|_| {}).await?;
    let events = EVENTS
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter_map(|v| crate::wire::event(&v).ok())
        .collect();
    store.ingest(events, now).await?;
    // Every lead was scored as it came in; this records the activation's
    // rescoring as done (so the next start has nothing to resume).
    store.rescore_all(at, std::sync::Arc::new(|_, _| {})).await?;
    Ok(true)
}
