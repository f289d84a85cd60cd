//! `/leads`: create, read, edit, erase, list; a lead's score as of any moment,
//! its history and its events.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadscore_core::Timestamp;
use leadscore_core::workflow::{Rating, Status};
use leadscore_store::{Cause, Cursor, LeadOrder, LeadPatch, LeadQuery, LeadRecord, LeadWrite, OnConflict};
use serde::Deserialize;
use serde_json::json;

use super::JsonBody;
use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::{view, wire};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpsertParam {
    #[serde(default)]
    pub upsert: bool,
}

pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    params: Result<Query<UpsertParam>, axum::extract::rejection::QueryRejection>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    who.require(&[Role::Admin, Role::Manager, Role::Ingest], "create leads")?;
    let Query(params) = params?;
    let new = wire::new_lead(&body)?;
    if who.role == Role::Ingest && new.owner.is_some() {
        return Err(
            ApiError::forbidden("an `ingest` token may not assign owners; a manager assigns leads")
                .with_field("owner"),
        );
    }
    let mode = if params.upsert {
        OnConflict::Update
    } else {
        OnConflict::Refuse
    };
    let data = new.lead.clone();
    let outcome = state.store.write_leads(vec![new], mode, state.now()).await?;
    if let Some(LeadWrite::Created(id)) = outcome.first() {
        view::record_first_evaluations(
            &state.store,
            &state.settings.rating,
            vec![(id.clone(), data, None)],
            state.now(),
        )
        .await?;
    }
    if let Some(LeadWrite::Created(id) | LeadWrite::Updated(id)) = outcome.first() {
        state.automation.touch([id.clone()]);
    }
    let (status, id) = match outcome.into_iter().next() {
        Some(LeadWrite::Created(id)) => (StatusCode::CREATED, id),
        Some(LeadWrite::Updated(id)) => (StatusCode::OK, id),
        Some(LeadWrite::Conflict { existing, by }) => {
            return Err(ApiError::conflict(
                "lead_exists",
                format!(
                    "a lead with this {} already exists: `{existing}` (add ?upsert=true to update it)",
                    by.as_str()
                ),
            )
            .with_field(by.as_str())
            .with_existing(existing));
        }
        None => return Err(ApiError::bad_request("no lead was written")),
    };
    if who.role == Role::Ingest {
        // Ingest tokens write, they do not read: the stored lead is not shown.
        let word = if status == StatusCode::CREATED {
            "created"
        } else {
            "updated"
        };
        return Ok((status, Json(json!({"id": id, "status": word}))).into_response());
    }
    let record = state
        .store
        .get_lead(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("lead `{id}`")))?;
    Ok((status, Json(view::lead(&state, &record).await?)).into_response())
}

/// The lead, if the caller may see it (others' leads are "not found" to reps).
pub(super) async fn visible(state: &AppState, who: &Principal, id: &str) -> ApiResult<LeadRecord> {
    who.require(&[Role::Admin, Role::Manager, Role::Rep], "read leads")?;
    if id.contains('\0') {
        return Err(ApiError::not_found("that lead"));
    }
    match state.store.get_lead(id).await? {
        Some(l) if who.sees(&l) => Ok(l),
        _ => Err(ApiError::not_found(format!("lead `{id}`"))),
    }
}

pub async fn get_one(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let lead = visible(&state, &who, &id).await?;
    Ok(Json(view::lead(&state, &lead).await?))
}

pub async fn patch(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<serde_json::Value>> {
    let mut record = visible(&state, &who, &id).await?;
    let mut body = body;
    let rating = super::workflow::take_rating(&mut body)?;
    let patch = wire::lead_patch(&body)?;
    if patch.owner.is_some() && who.role == Role::Rep {
        return Err(
            ApiError::forbidden("reps may not reassign leads; a manager assigns owners").with_field("owner"),
        );
    }
    // The lead's fields first: if they are refused (an e-mail another lead
    // has), the rating is left as it was too.
    let new_owner = patch.owner.clone();
    let old_owner = record.owner.clone();
    if patch != LeadPatch::default() {
        record = state
            .store
            .update_lead(&id, patch, state.now())
            .await?
            .ok_or_else(|| ApiError::not_found(format!("lead `{id}`")))?;
    }
    if let Some(owner) = new_owner
        && owner != old_owner
    {
        super::workflow::move_open_tasks(&state, &who, &id, old_owner.as_deref(), owner.as_deref()).await?;
    }
    if let Some(rating) = rating {
        super::workflow::set_rating(&state, &who, &id, rating).await?;
    }
    state.automation.touch([id.clone()]);
    Ok(Json(view::lead(&state, &record).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    who.require(&[Role::Admin, Role::Manager], "erase leads")?;
    if state.store.delete_lead(&id).await? {
        tracing::info!(lead = %id, "lead erased with its events and history");
        // Its rep's slot is free again.
        let reps: Vec<String> = state
            .automation
            .rules
            .settings
            .reps
            .iter()
            .map(|r| r.name.clone())
            .collect();
        if let Err(e) = state.store.automation().recount_loads(&reps).await {
            tracing::warn!(error = %e, "could not recount the reps' loads after an erasure");
        }
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("lead `{id}`")))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    band: Option<String>,
    grade: Option<String>,
    mql: Option<bool>,
    owner: Option<String>,
    rating: Option<String>,
    status: Option<String>,
    flagged: Option<bool>,
    q: Option<String>,
    sort: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    who.require(&[Role::Admin, Role::Manager, Role::Rep], "list leads")?;
    let Query(p) = params?;
    for (name, v) in [
        ("band", &p.band),
        ("grade", &p.grade),
        ("owner", &p.owner),
        ("q", &p.q),
        ("rating", &p.rating),
        ("status", &p.status),
    ] {
        if v.as_deref().is_some_and(|v| v.contains('\0')) {
            return Err(ApiError::invalid(name, format!("`{name}` holds a NUL character")));
        }
    }
    let order = match p.sort.as_deref() {
        None | Some("score") => LeadOrder::Score,
        Some("created") => LeadOrder::Created,
        Some(other) => {
            return Err(ApiError::invalid(
                "sort",
                format!("`sort` is `score` or `created`, not `{other}`"),
            ));
        }
    };
    let after = match p.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            Cursor::decode(c)
                .ok_or_else(|| ApiError::invalid("cursor", "the cursor is not one this API gave"))?,
        ),
    };
    let limit = super::page_limit(p.limit, 50)?;
    let owner = if who.role == Role::Rep {
        if p.owner.as_ref().is_some_and(|o| Some(o) != who.user.as_ref()) {
            return Ok(Json(json!({"leads": [], "next_cursor": null})));
        }
        Some(who.user.clone().unwrap_or_default())
    } else {
        p.owner
    };
    if let Some(r) = &p.rating
        && Rating::parse(r).is_none()
    {
        let all: Vec<&str> = Rating::ALL.iter().map(|r| r.as_str()).collect();
        return Err(ApiError::invalid(
            "rating",
            format!("`rating` is one of {}", all.join(", ")),
        ));
    }
    if let Some(st) = &p.status
        && Status::parse(st).is_none()
    {
        let all: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        return Err(ApiError::invalid(
            "status",
            format!("`status` is one of {}", all.join(", ")),
        ));
    }
    let flagged = match p.flagged {
        Some(true) => Some(match state.store.active_model().await? {
            Some(set) => {
                let mut pairs: Vec<(String, String, bool)> = set
                    .members
                    .iter()
                    .flat_map(|m| state.settings.rating.disagreeing_pairs(&m.model))
                    .map(|(r, b, mql)| (r.as_str().to_owned(), b, mql))
                    .collect();
                pairs.sort();
                pairs.dedup();
                pairs
            }
            None => Vec::new(),
        }),
        _ => None,
    };
    let query = LeadQuery {
        band: p.band,
        grade: p.grade,
        mql: p.mql,
        owner,
        rating: p.rating,
        status: p.status,
        flagged,
        text: p.q,
        order,
        limit,
        after,
    };
    let (leads, next) = state.store.list_leads(&query).await?;
    Ok(Json(json!({
        "leads": view::leads(&state, &leads).await?,
        "next_cursor": next.map(|c| c.encode()),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsOf {
    as_of: Option<String>,
}

pub async fn score_as_of(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    params: Result<Query<AsOf>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Query(p) = params?;
    let lead = visible(&state, &who, &id).await?;
    let as_of = match p.as_of.as_deref() {
        None => state.now(),
        Some(s) => Timestamp::parse(s).map_err(|e| ApiError::invalid("as_of", e.to_string()))?,
    };
    let set = state.store.active_model().await?.ok_or_else(|| {
        ApiError::conflict(
            "no_active_model",
            "no model is active: POST /api/v1/models, then activate it",
        )
    })?;
    let model = set.for_lead(&lead.lead).ok_or_else(|| {
        ApiError::conflict(
            "no_applicable_model",
            "no active model applies to this lead (each active model's `applies_to` excludes it)",
        )
    })?;
    let events = state.store.lead_events(&id).await?;
    let score = model.model.score(&lead.lead, &events, as_of);
    Ok(Json(json!(leadscore_store::rescore::stored_score(
        model, &score, as_of
    ))))
}

pub async fn history(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    visible(&state, &who, &id).await?;
    // Activities a rep logged name the rep on the history entries they caused.
    let logged_by: std::collections::HashMap<String, String> = state
        .store
        .lead_events(&id)
        .await?
        .into_iter()
        .filter_map(|e| e.properties.get(wire::LOGGED_BY).cloned().map(|by| (e.id, by)))
        .collect();
    let history = state.store.history(&id).await?;
    let mentioned: std::collections::HashSet<&str> = history
        .iter()
        .flat_map(|h| match &h.cause {
            Cause::Events { events } => events.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        })
        .collect();
    // An activity that changed nothing in the score still shows, at the score it left.
    let log = state.store.lead_log(&id).await?;
    let mut quiet = log
        .iter()
        .filter(|e| {
            e.kind == "activity"
                && e.detail["event"]
                    .as_str()
                    .is_some_and(|ev| !mentioned.contains(ev))
        })
        .peekable();
    let unchanged = |a: &leadscore_store::LogEntry, last: Option<&leadscore_store::HistoryEntry>| {
        json!({
            "at": a.at.to_string(),
            "score": last.map(|h| h.score),
            "band": last.map(|h| h.band.as_str()),
            "mql": last.map(|h| h.mql),
            "model": last.map(|h| h.model.as_str()),
            "cause": {"kind": "activity", "events": [a.detail["event"]], "type": a.detail["type"], "by": [a.actor]},
        })
    };
    let mut entries: Vec<serde_json::Value> = Vec::with_capacity(history.len());
    let mut last = None;
    for h in &history {
        let at = Timestamp::parse(&h.at).ok();
        while let Some(a) = quiet.next_if(|a| at.is_some_and(|t| a.at < t)) {
            entries.push(unchanged(a, last));
        }
        let by: Vec<&String> = match &h.cause {
            Cause::Events { events } => events.iter().filter_map(|e| logged_by.get(e)).collect(),
            _ => Vec::new(),
        };
        let mut v = json!(h);
        if !by.is_empty() {
            v["cause"]["by"] = json!(by);
        }
        entries.push(v);
        last = Some(h);
    }
    entries.extend(quiet.map(|a| unchanged(a, last)));
    Ok(Json(json!({"lead": id, "history": entries})))
}

pub async fn events(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    visible(&state, &who, &id).await?;
    let events = state.store.lead_events(&id).await?;
    Ok(Json(json!({
        "lead": id,
        "events": events.iter().map(|e| json!({
            "id": e.id,
            "type": e.kind,
            "occurred_at": e.occurred_at.to_string(),
            "properties": e.properties,
        })).collect::<Vec<_>>(),
    })))
}
