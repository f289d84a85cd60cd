//! What the web pages need beyond the lead API: the manager's overview
//! figures, a model check as marketing ops type, and the users (admins).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use leadscore_core::ScoringModel;
use leadscore_store::accounts::User;
use serde::Deserialize;
use serde_json::{Value, json};

use super::workflow::parse;
use super::{JsonBody, TextBody};
use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::web::{i18n, session};

const MANAGERS: [Role; 2] = [Role::Admin, Role::Manager];

/// `GET /stats/overview`: leads by band and by rep, MQLs per week (the last
/// 12), ratings across reps, and hot leads nobody has touched.
pub async fn overview(State(state): State<AppState>, who: Principal) -> ApiResult<Json<Value>> {
    who.require(&MANAGERS, "read the overview")?;
    let hot = state.automation.rules.settings.senior_bands.clone();
    let o = state.store.stats().overview(state.now(), 12, &hot).await?;
    let mut v = serde_json::to_value(o).expect("the overview serializes");
    v["hot_bands"] = json!(hot);
    Ok(Json(v))
}

/// `POST /models/check`: is this TOML a valid model? What it holds, or the
/// error with its line (the same message as `leadscore check-model`).
pub async fn check_model(who: Principal, TextBody(text): TextBody) -> ApiResult<Json<Value>> {
    who.require(&MANAGERS, "check models")?;
    match ScoringModel::from_toml(&text, "model.toml") {
        Ok(m) => Ok(Json(json!({
            "valid": true,
            "name": m.name,
            "fit_rules": m.fit.len(),
            "behavior_rules": m.behavior.len(),
            "bands": m.bands.iter().map(|b| json!({"name": b.name, "from": b.from})).collect::<Vec<_>>(),
            "max_fit": m.max_fit(),
            "max_engagement": m.max_engagement(),
            "mql_threshold": m.mql.map(|q| q.threshold),
        }))),
        Err(e) => Ok(Json(json!({
            "valid": false,
            "message": e.to_string(),
            "line": e.line,
            "rule": e.rule,
        }))),
    }
}

fn user_json(u: &User) -> Value {
    json!({"name": u.name, "role": u.role, "locale": u.locale, "active": u.active, "created_at": u.created_at.to_string()})
}

pub async fn users(State(state): State<AppState>, who: Principal) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin], "manage users")?;
    let users = state.store.accounts().users().await?;
    Ok(Json(
        json!({"users": users.iter().map(user_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    role: String,
    #[serde(default)]
    locale: Option<String>,
    password: String,
}

/// `POST /users`: a user of the web pages (or a reset of one).
pub async fn create_user(
    State(state): State<AppState>,
    who: Principal,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(&[Role::Admin], "manage users")?;
    let u: NewUser = parse(body, "the user")?;
    let name = u.name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name",
            "`name` has 1 to 100 characters, no control characters",
        ));
    }
    if !matches!(u.role.as_str(), "admin" | "manager" | "rep") {
        return Err(ApiError::invalid("role", "`role` is admin, manager or rep"));
    }
    let locale = u.locale.unwrap_or_else(|| "en".into());
    if !i18n::known(&locale) {
        return Err(ApiError::invalid(
            "locale",
            format!("`locale` is one of {}", i18n::LOCALES.join(", ")),
        ));
    }
    session::check_password(&u.password).map_err(|m| ApiError::invalid("password", m))?;
    let hash = tokio::task::spawn_blocking(move || session::hash_password(&u.password))
        .await
        .map_err(|e| ApiError::bad_request(format!("hashing failed: {e}")))?
        .map_err(ApiError::bad_request)?;
    let user = User {
        name: name.to_owned(),
        password_hash: hash,
        role: u.role,
        locale,
        created_at: state.now(),
        active: true,
    };
    state.store.accounts().put_user(&user).await?;
    Ok((StatusCode::CREATED, Json(user_json(&user))))
}
