//! `/models`: store a scoring model (TOML), list them, activate one. An
//! activation switches the active model at once and rescores every lead in
//! the background; `GET /models/{name}` shows the progress.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use leadscore_core::ScoringModel;
use leadscore_store::{ModelRecord, PutModel};
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

pub async fn activate(
    State(state): State<AppState>,
    who: Principal,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(&[Role::Admin], "activate models")?;
    let now = state.now();
    state.store.activate_model(&name, now).await?;
    tracing::info!(model = %name, "model activated; rescoring every lead");
    start_rescore(&state, now);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"name": name, "active": true, "rescoring": format!("/api/v1/models/{name}")})),
    ))
}

/// Rescores every lead in the background, reporting progress to the
/// metrics. A rescoring still running for an earlier activation is stopped
/// first (between two chunks, each its own transaction).
pub fn start_rescore(state: &AppState, now: leadscore_core::Timestamp) {
    let store = state.store.clone();
    let metrics = state.metrics.clone();
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
            Ok(n) => tracing::info!(
                leads = n,
                seconds = started.elapsed().as_secs_f64(),
                "rescoring finished"
            ),
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
    let Some(record) = state.store.get_model(&active.name).await? else {
        return Ok(false);
    };
    if record.rescore.as_ref().is_some_and(|r| r.finished) {
        return Ok(false);
    }
    let since = record
        .activated_at
        .as_deref()
        .and_then(|t| leadscore_core::Timestamp::parse(t).ok())
        .unwrap_or_else(|| state.now());
    tracing::info!(model = %record.name, "resuming the rescoring of the last activation");
    start_rescore(state, since);
    Ok(true)
}
