//! `/predictive`: train the predictive model from the deployment's own
//! outcomes, and see which one is active.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::predictive::{TrainError, retrain};

pub async fn train(State(state): State<AppState>, who: Principal) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(&[Role::Admin], "train predictive models")?;
    match retrain(&state.store, state.now()).await {
        Ok(t) => {
            tracing::info!(model = %t.name, leads = t.leads, auc = t.auc, "predictive model trained and active");
            Ok((StatusCode::CREATED, Json(json!(t))))
        }
        Err(e @ TrainError::TooFew { .. }) => Err(ApiError::conflict("too_few_outcomes", e.to_string())),
        Err(TrainError::Store(e)) => Err(e.into()),
        Err(e @ TrainError::Data(_)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            e.to_string(),
        )),
    }
}

pub async fn active(State(state): State<AppState>, who: Principal) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin, Role::Manager], "read predictive models")?;
    match state.store.active_predictive().await? {
        Some((name, _, metrics)) => Ok(Json(json!({
            "name": name,
            "figures": serde_json::from_str::<Value>(&metrics).unwrap_or(Value::Null),
        }))),
        None => Err(ApiError::not_found(
            "an active predictive model (POST /api/v1/predictive/train)",
        )),
    }
}
