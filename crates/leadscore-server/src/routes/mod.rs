//! The routes: the API under `/api/v1`, and the operations endpoints.

mod admin;
mod automation;
mod events;
mod leads;
mod models;
mod predictive;
mod reports;
mod transfer;
mod workflow;

pub use models::resume_rescore;

/// The lead, if `who` may see it (the web pages ask before drawing one).
pub(crate) async fn visible_lead(
    state: &AppState,
    who: &crate::auth::Principal,
    id: &str,
) -> Result<leadscore_store::LeadRecord, ApiError> {
    leads::visible(state, who, id).await
}

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use serde_json::Value;
use std::sync::atomic::Ordering;

use crate::AppState;
use crate::error::{ApiError, body_error};

pub fn api() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/leads", post(leads::create).get(leads::list))
        .route("/leads/import", post(transfer::import))
        .route("/leads/export.csv", get(transfer::export))
        .route(
            "/leads/{id}",
            get(leads::get_one).patch(leads::patch).delete(leads::delete),
        )
        .route("/leads/{id}/score", get(leads::score_as_of))
        .route("/leads/{id}/history", get(leads::history))
        .route("/leads/{id}/events", get(leads::events))
        .route(
            "/leads/{id}/qualification",
            get(workflow::get_qualification).put(workflow::put_qualification),
        )
        .route("/leads/{id}/status", post(workflow::set_status))
        .route("/leads/{id}/activities", post(workflow::log_activity))
        .route("/leads/{id}/log", get(workflow::lead_log))
        .route("/tasks", get(workflow::list_tasks))
        .route("/reports/model", get(reports::model).post(reports::draft))
        .route("/predictive", get(predictive::active))
        .route("/predictive/train", post(predictive::train))
        .route("/tasks/{id}/{action}", post(workflow::change_task))
        .route("/webhooks", post(automation::create).get(automation::list))
        .route("/webhooks/{id}", delete(automation::delete))
        .route("/webhooks/{id}/deliveries", get(automation::deliveries))
        .route("/webhooks/{id}/deliveries/{delivery}", get(automation::delivery))
        .route(
            "/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(automation::redeliver),
        )
        .route("/notifications", get(automation::notifications))
        .route("/notifications/{id}/read", post(automation::mark_read))
        .route("/nurture", get(automation::nurture))
        .route("/nurture.csv", get(automation::nurture_csv))
        .route("/reps", get(automation::reps))
        .route("/stats/overview", get(admin::overview))
        .route("/models/check", post(admin::check_model))
        .route("/users", get(admin::users).post(admin::create_user))
        .route("/events", post(events::one))
        .route("/events/batch", post(events::batch))
        .route("/models", post(models::create).get(models::list))
        .route("/models/{name}", get(models::get_one))
        .route("/models/{name}/activate", post(models::activate))
        .fallback(|| async { ApiError::not_found("this API path") })
}

pub fn ops() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn openapi() -> impl IntoResponse {
    axum::Json(crate::openapi::document())
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if !state.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    if state.warming.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "warming up").into_response();
    }
    match state.store.counts().await {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// The request body, read whole within the body limit (else 413).
async fn whole_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|e| body_error(e.status(), e.body_text()))
}

/// A JSON body read whole (within the body limit) and parsed, with errors in
/// the API's shape: where the JSON breaks, or that the body is too large.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = whole_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "the request body is empty; send a JSON document",
            ));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
    }
}

/// A page size: `limit` (or `default`), from 1 to 1000.
pub fn page_limit(limit: Option<usize>, default: usize) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(default);
    if (1..=1000).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid("limit", "`limit` is between 1 and 1000"))
    }
}

/// A JSON body that may be left out (empty): `None` then.
pub struct OptionalJson(pub Option<Value>);

impl<S: Send + Sync> FromRequest<S> for OptionalJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = whole_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        serde_json::from_slice(&bytes)
            .map(|v| OptionalJson(Some(v)))
            .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
    }
}

/// A text body (CSV, TOML) read whole within the body limit.
pub struct TextBody(pub String);

impl<S: Send + Sync> FromRequest<S> for TextBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = whole_body(req, state).await?;
        if let Some(at) = bytes.iter().position(|b| *b == 0) {
            return Err(ApiError::bad_request(format!(
                "the body holds a NUL byte (byte {at}); send text"
            )));
        }
        String::from_utf8(bytes.to_vec()).map(TextBody).map_err(|e| {
            ApiError::bad_request(format!(
                "the body is not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ))
        })
    }
}
