//! `POST /leads/import` (CSV in, per-row report out) and `GET /leads/export.csv`.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;

use super::TextBody;
use super::leads::UpsertParam;
use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::import;

pub async fn import(
    State(state): State<AppState>,
    who: Principal,
    params: Result<Query<UpsertParam>, axum::extract::rejection::QueryRejection>,
    TextBody(text): TextBody,
) -> ApiResult<Json<import::ImportReport>> {
    who.require(&[Role::Admin, Role::Manager, Role::Ingest], "import leads")?;
    let Query(p) = params?;
    let rows = import::read_csv(&text)
        .map_err(|m| ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "invalid_csv", m))?;
    let report = import::import(
        &state.store,
        rows,
        p.upsert,
        state.now(),
        usize::MAX,
        &state.settings.rating,
        &|_| {},
    )
    .await?;
    // New and changed leads are found by the automation's sweep.
    state.automation.sweep.notify_one();
    tracing::info!(
        created = report.created,
        updated = report.updated,
        rejected = report.rejected,
        "leads imported"
    );
    Ok(Json(report))
}

pub async fn export(State(state): State<AppState>, who: Principal) -> ApiResult<impl IntoResponse> {
    who.require(&[Role::Admin, Role::Manager, Role::Rep], "export leads")?;
    let owner = match who.role {
        Role::Rep => Some(who.user.clone().unwrap_or_default()),
        _ => None,
    };
    let csv = import::export(&state.store, owner).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"leads.csv\""),
        ],
        csv,
    ))
}
