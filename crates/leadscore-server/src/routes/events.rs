//! `/events`: one event, or a batch of up to 10,000. A 2xx answer means the
//! accepted events are durably stored and their leads rescored.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use leadscore_core::Event;
use leadscore_store::IngestStatus;
use serde_json::{Value, json};

use super::JsonBody;
use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::wire;

pub const MAX_BATCH: usize = 10_000;

const WRITERS: [Role; 3] = [Role::Admin, Role::Manager, Role::Ingest];

pub async fn one(
    State(state): State<AppState>,
    who: Principal,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(&WRITERS, "post events")?;
    let event = wire::event(&body)?;
    let id = event.id.clone();
    let lead = event.lead.clone();
    let status = state.store.ingest(vec![event], state.now()).await?;
    if status.first() == Some(&IngestStatus::Accepted) {
        state.automation.touch([lead.clone()]);
    }
    let status = status
        .into_iter()
        .next()
        .unwrap_or(IngestStatus::Rejected("not stored".into()));
    state.metrics.count_events(status_name(&status), 1);
    match status {
        IngestStatus::Accepted => Ok((StatusCode::CREATED, Json(json!({"id": id, "status": "accepted"})))),
        IngestStatus::Duplicate => Ok((StatusCode::OK, Json(json!({"id": id, "status": "duplicate"})))),
        IngestStatus::Rejected(reason) if reason.starts_with("unknown lead") => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_lead",
            format!("there is no lead `{lead}`: create it first (POST /api/v1/leads)"),
        )
        .with_field("lead")),
        IngestStatus::Rejected(reason) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "rejected",
            reason,
        )),
    }
}

fn status_name(s: &IngestStatus) -> &'static str {
    match s {
        IngestStatus::Accepted => "accepted",
        IngestStatus::Duplicate => "duplicate",
        IngestStatus::Rejected(_) => "rejected",
    }
}

pub async fn batch(
    State(state): State<AppState>,
    who: Principal,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    who.require(&WRITERS, "post events")?;
    let Value::Array(items) = body else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "a batch is a JSON array of events",
        ));
    };
    if items.len() > MAX_BATCH {
        return Err(ApiError::too_large(format!(
            "a batch holds at most {MAX_BATCH} events; this one has {}: split it",
            items.len()
        )));
    }
    // Validate each event; only the valid ones go to the store.
    let mut results: Vec<Option<Result<(), String>>> = Vec::with_capacity(items.len());
    let mut valid: Vec<Event> = Vec::with_capacity(items.len());
    let mut ids: Vec<Value> = Vec::with_capacity(items.len());
    for item in &items {
        ids.push(item.get("id").cloned().unwrap_or(Value::Null));
        match wire::event(item) {
            Ok(e) => {
                valid.push(e);
                results.push(None);
            }
            Err(e) => results.push(Some(Err(match e.field {
                Some(f) => format!("{f}: {}", e.message),
                None => e.message,
            }))),
        }
    }
    let touched: std::collections::BTreeSet<String> = valid.iter().map(|e| e.lead.clone()).collect();
    let statuses = if valid.is_empty() {
        Vec::new()
    } else {
        state.store.ingest(valid, state.now()).await?
    };
    state.automation.touch(touched);
    let mut stored = statuses.into_iter();
    let (mut accepted, mut duplicate, mut rejected) = (0u64, 0u64, 0u64);
    let out: Vec<Value> = results
        .into_iter()
        .zip(ids)
        .map(|(r, id)| {
            let (status, reason) = match r {
                Some(Err(reason)) => ("rejected", Some(reason)),
                _ => match stored.next() {
                    Some(IngestStatus::Accepted) => ("accepted", None),
                    Some(IngestStatus::Duplicate) => ("duplicate", None),
                    Some(IngestStatus::Rejected(reason)) => ("rejected", Some(reason)),
                    None => ("rejected", Some("not stored".to_owned())),
                },
            };
            match status {
                "accepted" => accepted += 1,
                "duplicate" => duplicate += 1,
                _ => rejected += 1,
            }
            match reason {
                Some(reason) => json!({"id": id, "status": status, "reason": reason}),
                None => json!({"id": id, "status": status}),
            }
        })
        .collect();
    state.metrics.count_events("accepted", accepted);
    state.metrics.count_events("duplicate", duplicate);
    state.metrics.count_events("rejected", rejected);
    Ok(Json(json!({
        "accepted": accepted,
        "duplicate": duplicate,
        "rejected": rejected,
        "results": out,
    })))
}
