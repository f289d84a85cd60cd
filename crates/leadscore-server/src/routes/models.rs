//! `/models`: store a scoring model (TOML), list them, activate one. An
//! activation switches the active model at once and rescores every lead in
//! the background; `GET /models/{name}` shows the progress.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use leadscore_core::ScoringModel;
use leadscore_store::{ModelRecord, PutModel};
use serde::Deserialize;
use serde_json::{Value, json};

use super::TextBody;
use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};

fn model_json(m: &ModelRecord, with_toml: bool) -> Value {
    let mut v = json!(m);
    if with_toml {
        v["toml"] = json!(m.toml);
    }
    v
}

pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    TextBody(text): TextBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(&[Role::Admin], "store models")?;
    let model = ScoringModel::from_toml(&text, "model.toml").map_err(|e| {
        let mut err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_model", e.to_string());
        err.field = e.rule.clone();
        err
    })?;
    let status = match state.store.put_model(&model.name, &text, state.now()).await? {
        PutModel::Created => StatusCode::CREATED,
        PutModel::Unchanged => StatusCode::OK,
        PutModel::NameTaken => {
            return Err(ApiError::conflict(
                "model_exists",
                format!("a different model named `{}` is stored; models are kept as they were, so give this one a new name", model.name),
            )
            .with_field("name"));
        }
    };
    let record = state
        .store
        .get_model(&model.name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("model `{}`", model.name)))?;
    Ok((status, Json(model_json(&record, false))))
}

pub async fn list(State(state): State<AppState>, who: Principal) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin, Role::Manager], "read models")?;
    let models = state.store.list_models().await?;
    Ok(Json(
        json!({"models": models.iter().map(|m| model_json(m, false)).collect::<Vec<_>>()}),
    ))
}

pub async fn get_one(
    State(state): State<AppState>,
    who: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin, Role::Manager], "read models")?;
    let m = state
        .store
        .get_model(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("model `{name}`")))?;
    Ok(Json(model_json(&m, true)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateParams {
    /// Keep the other active models: several models are active at once,
    /// each scoring the leads its `applies_to` selects.
    #[serde(default)]
    alongside: bool,
}

pub async fn activate(
    State(state): State<AppState>,
    who: Principal,
    Path(name): Path<String>,
    params: Result<Query<ActivateParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(&[Role::Admin], "activate models")?;
    let Query(params) = params?;
    let now = state.now();
    let at = state.store.activate_model(&name, now, params.alongside).await?;
    tracing::info!(model = %name, alongside = params.alongside, "model activated; rescoring every lead");
    start_rescore(&state, at);
    let active: Vec<String> = state
        .store
        .active_model()
        .await?
        .map(|set| set.members.into_iter().map(|m| m.name.to_string()).collect())
        .unwrap_or_default();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"name": name, "active": true, "active_models": active,
                    "rescoring": format!("/api/v1/models/{name}")})),
    ))
}

/// Rescores every lead in the background, reporting progress to the
/// metrics. A rescoring still running for an earlier activation is stopped
/// first (between two chunks, each its own transaction).
pub fn start_rescore(state: &AppState, now: leadscore_core::Timestamp) {
    let store = state.store.clone();
    let metrics = state.metrics.clone();
    let automation = state.automation.clone();
    metrics.rescore_done.set(0);
    let mut running = state.rescoring.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(previous) = running.take() {
        previous.abort();
    }
    *running = Some(tokio::spawn(async move {
        let m = metrics.clone();
        let progress = Arc::new(move |done: u64, total: u64| {
            m.rescore_done.set(done as i64);
            m.rescore_total.set(total as i64);
        });
        let started = std::time::Instant::now();
        match store.rescore_all(now, progress).await {
            Ok(n) => {
                tracing::info!(
                    leads = n,
                    seconds = started.elapsed().as_secs_f64(),
                    "rescoring finished"
                );
                // Bands and MQL may have moved for many leads: triggers look.
                automation.sweep.notify_one();
            }
            Err(e) => tracing::error!(error = %e, "rescoring failed; it resumes at the next start"),
        }
    }));
}

/// At start: finishes the rescoring of the active model's activation if a
/// stop (or a failure) interrupted it.
pub async fn resume_rescore(state: &AppState) -> Result<bool, leadscore_store::StoreError> {
    let Some(active) = state.store.active_model().await? else {
        return Ok(false);
    };
    // The active models share the progress of the last activation's rescoring.
    let mut unfinished = false;
    let mut since: Option<leadscore_core::Timestamp> = None;
    for member in &active.members {
        let Some(record) = state.store.get_model(&member.name).await? else {
            continue;
        };
        unfinished |= !record.rescore.as_ref().is_some_and(|r| r.finished);
        let at = record
            .activated_at
            .as_deref()
            .and_then(|t| leadscore_core::Timestamp::parse(t).ok());
        since = since.max(at);
    }
    if !unfinished {
        return Ok(false);
    }
    tracing::info!("resuming the rescoring of the last activation");
    start_rescore(state, since.unwrap_or_else(|| state.now()));
    Ok(true)
}
