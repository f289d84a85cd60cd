//! `/reports`: how good a model's scores are against real outcomes.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use leadscore_core::ScoringModel;
use serde::Deserialize;
use serde_json::Value;

use super::TextBody;
use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::reports;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelReportParams {
    /// A stored model (a backtest before activating it); default: the active one.
    model: Option<String>,
    /// Leads a week the sales team can work, for the MQL threshold advice.
    capacity: Option<f64>,
}

pub async fn model(
    State(state): State<AppState>,
    who: Principal,
    params: Result<Query<ModelReportParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin, Role::Manager], "read reports")?;
    let Query(p) = params?;
    if let Some(c) = p.capacity
        && !(c.is_finite() && c > 0.0)
    {
        return Err(ApiError::invalid(
            "capacity",
            "`capacity` is a number of leads a week above 0",
        ));
    }
    let model = reports::model(&state.store, p.model.as_deref()).await?;
    report_json(&state, model, p.capacity).await
}

async fn report_json(state: &AppState, model: ScoringModel, capacity: Option<f64>) -> ApiResult<Json<Value>> {
    let cases = reports::cases(&state.store).await?;
    let report =
        tokio::task::spawn_blocking(move || leadscore_core::report::report(&model, &cases, capacity))
            .await
            .map_err(|e| ApiError::bad_request(format!("the report failed: {e}")))?;
    Ok(Json(serde_json::to_value(report).expect("a report serializes")))
}

/// `POST /reports/model`: the report for a draft model (its TOML in the
/// body), not stored: a backtest while marketing ops edit.
pub async fn draft(
    State(state): State<AppState>,
    who: Principal,
    TextBody(text): TextBody,
) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin, Role::Manager], "read reports")?;
    let model = ScoringModel::from_toml(&text, "draft.toml").map_err(|e| {
        let mut err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_model", e.to_string());
        err.field = e.rule.clone();
        err
    })?;
    report_json(&state, model, None).await
}
