//! `/reports`: how good a model's scores are against real outcomes.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::Value;

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
    let cases = reports::cases(&state.store).await?;
    let report =
        tokio::task::spawn_blocking(move || leadscore_core::report::report(&model, &cases, p.capacity))
            .await
            .map_err(|e| ApiError::bad_request(format!("the report failed: {e}")))?;
    Ok(Json(serde_json::to_value(report).expect("a report serializes")))
}
