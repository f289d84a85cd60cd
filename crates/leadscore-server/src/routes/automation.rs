//! Automation over HTTP: webhook subscriptions and their delivery logs,
//! notifications, the nurture list and the reps' loads.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use leadscore_store::automation::Webhook;
use serde::Deserialize;
use serde_json::{Value, json};

use super::workflow::parse;
use super::{JsonBody, page_limit};
use crate::AppState;
use crate::auth::{Principal, Role};
use crate::automation::config::valid_event_name;
use crate::error::{ApiError, ApiResult};
use crate::wire;

const ADMIN: [Role; 1] = [Role::Admin];

/// Ids with a NUL byte name nothing (and the databases refuse them).
fn id_ok(what: &str, id: &str) -> ApiResult<()> {
    if id.contains('\0') {
        Err(ApiError::not_found(format!("that {what}")))
    } else {
        Ok(())
    }
}
const MANAGERS: [Role; 2] = [Role::Admin, Role::Manager];

/// The happenings leadscore itself produces (triggers may add their own).
pub const HAPPENINGS: [&str; 10] = [
    "lead.mql",
    "lead.mql_lost",
    "lead.band_changed",
    "lead.assigned",
    "lead.rating_changed",
    "lead.status_changed",
    "lead.nurture_added",
    "lead.nurture_removed",
    "lead.notified",
    "task.due",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhook {
    url: String,
    events: Vec<String>,
    secret: String,
}

fn webhook_json(w: &Webhook) -> Value {
    json!({
        "id": w.id,
        "url": w.url,
        "events": w.events,
        "created_at": w.created_at.to_string(),
        "created_by": w.created_by,
        "active": w.active,
    })
}

/// `POST /webhooks`: a subscription (admin).
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(&ADMIN, "manage webhooks")?;
    let w: NewWebhook = parse(body, "the subscription")?;
    let url = w.url.trim();
    let parsed =
        reqwest::Url::parse(url).map_err(|e| ApiError::invalid("url", format!("`url` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ApiError::invalid(
            "url",
            "`url` must be an http:// or https:// URL",
        ));
    }
    if parsed.host_str().is_none() {
        return Err(ApiError::invalid("url", "`url` names no host"));
    }
    if w.events.is_empty() {
        return Err(ApiError::invalid(
            "events",
            format!(
                "`events` lists no happening; e.g. {} (or \"*\" for all)",
                HAPPENINGS.join(", ")
            ),
        ));
    }
    for (i, e) in w.events.iter().enumerate() {
        if e != "*" && !valid_event_name(e) {
            return Err(ApiError::invalid(
                format!("events[{i}]"),
                format!("`{e}` is not a happening name (letters, digits, `.`, `_`, `-`)"),
            ));
        }
    }
    if w.secret.len() < 16 || w.secret.len() > 512 {
        return Err(ApiError::invalid(
            "secret",
            "`secret` must be 16 to 512 characters (it keys the HMAC-SHA256 signature)",
        ));
    }
    wire::no_control("secret", &w.secret)?;
    let hook = Webhook {
        id: format!("wh_{}", uuid::Uuid::now_v7().simple()),
        url: url.to_owned(),
        events: w.events,
        secret: w.secret,
        created_at: state.now(),
        created_by: Some(who.actor()),
        active: true,
    };
    state.store.automation().create_webhook(&hook).await?;
    Ok((StatusCode::CREATED, Json(webhook_json(&hook))))
}

pub async fn list(State(state): State<AppState>, who: Principal) -> ApiResult<Json<Value>> {
    who.require(&ADMIN, "manage webhooks")?;
    let hooks = state.store.automation().webhooks().await?;
    Ok(Json(json!({
        "webhooks": hooks.iter().map(webhook_json).collect::<Vec<_>>(),
        "happenings": HAPPENINGS,
    })))
}

pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    who.require(&ADMIN, "manage webhooks")?;
    id_ok("webhook", &id)?;
    if state.store.automation().delete_webhook(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("webhook `{id}`")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    state: Option<String>,
    limit: Option<usize>,
}

async fn known_webhook(state: &AppState, id: &str) -> ApiResult<()> {
    id_ok("webhook", id)?;
    if state
        .store
        .automation()
        .webhooks()
        .await?
        .iter()
        .any(|w| w.id == id)
    {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("webhook `{id}`")))
    }
}

/// `GET /webhooks/{id}/deliveries`: the delivery log, newest first.
pub async fn deliveries(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    params: Result<Query<DeliveryParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    who.require(&ADMIN, "manage webhooks")?;
    let Query(p) = params?;
    if let Some(s) = &p.state
        && !matches!(s.as_str(), "pending" | "delivered" | "failed")
    {
        return Err(ApiError::invalid(
            "state",
            "`state` is pending, delivered or failed",
        ));
    }
    let limit = page_limit(p.limit, 100)?;
    known_webhook(&state, &id).await?;
    let list = state
        .store
        .automation()
        .deliveries(&id, p.state.as_deref(), limit)
        .await?;
    Ok(Json(json!({"deliveries": list})))
}

/// `GET /webhooks/{id}/deliveries/{delivery}`: one delivery and its tries.
pub async fn delivery(
    State(state): State<AppState>,
    who: Principal,
    Path((id, delivery)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    who.require(&ADMIN, "manage webhooks")?;
    id_ok("delivery", &delivery)?;
    match state.store.automation().delivery(&delivery).await? {
        Some((d, tries)) if d.webhook == id => {
            let mut v = serde_json::to_value(&d).expect("a delivery serializes");
            v["tries"] = json!(tries);
            Ok(Json(v))
        }
        _ => Err(ApiError::not_found(format!(
            "delivery `{delivery}` of webhook `{id}`"
        ))),
    }
}

/// `POST /webhooks/{id}/deliveries/{delivery}/redeliver`: send it again,
/// with the same id, whatever became of it.
pub async fn redeliver(
    State(state): State<AppState>,
    who: Principal,
    Path((id, delivery)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(&ADMIN, "manage webhooks")?;
    id_ok("delivery", &delivery)?;
    id_ok("webhook", &id)?;
    if !state
        .store
        .automation()
        .redeliver(&id, &delivery, state.now())
        .await?
    {
        return Err(ApiError::not_found(format!(
            "delivery `{delivery}` of webhook `{id}`"
        )));
    }
    state.automation.outbox.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": delivery, "state": "pending"})),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationParams {
    unread: Option<bool>,
    limit: Option<usize>,
}

/// `GET /notifications`: the caller's notifications, newest first.
pub async fn notifications(
    State(state): State<AppState>,
    who: Principal,
    params: Result<Query<NotificationParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    who.require(&[Role::Admin, Role::Manager, Role::Rep], "read notifications")?;
    let Query(p) = params?;
    let limit = page_limit(p.limit, 100)?;
    let Some(user) = who.user.clone() else {
        return Ok(Json(json!({"notifications": []})));
    };
    let list = state
        .store
        .automation()
        .notifications(&user, p.unread.unwrap_or(false), limit)
        .await?;
    Ok(Json(json!({"notifications": list})))
}

/// `POST /notifications/{id}/read`.
pub async fn mark_read(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    who.require(&[Role::Admin, Role::Manager, Role::Rep], "read notifications")?;
    let user = who.user.clone().unwrap_or_default();
    id_ok("notification", &id)?;
    if state
        .store
        .automation()
        .mark_read(&id, &user, state.now())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("notification `{id}`")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NurtureParams {
    after: Option<String>,
    limit: Option<usize>,
}

/// `GET /nurture`: leads on the nurture list, in id order (page with `after`).
pub async fn nurture(
    State(state): State<AppState>,
    who: Principal,
    params: Result<Query<NurtureParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    who.require(&MANAGERS, "read the nurture list")?;
    let Query(p) = params?;
    let limit = page_limit(p.limit, 200)?;
    if let Some(a) = &p.after {
        wire::no_control("after", a)?;
    }
    let items = state
        .store
        .automation()
        .nurture(p.after.as_deref().unwrap_or(""), limit)
        .await?;
    let mut leads = Vec::with_capacity(items.len());
    for (id, since) in &items {
        if let Some(r) = state.store.get_lead(id).await? {
            let mut v = wire::lead_json(&r);
            v["nurture_since"] = json!(since.to_string());
            leads.push(v);
        }
    }
    let next = (items.len() == limit)
        .then(|| items.last().map(|(id, _)| id.clone()))
        .flatten();
    Ok(Json(json!({"leads": leads, "next_after": next})))
}

/// `GET /nurture.csv`: the whole nurture list for marketing's tools.
pub async fn nurture_csv(State(state): State<AppState>, who: Principal) -> ApiResult<impl IntoResponse> {
    who.require(&MANAGERS, "export the nurture list")?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = [
        "id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "company",
        "country",
        "score",
        "band",
        "nurture_since",
    ];
    out.write_record(header).map_err(csv_error)?;
    let automation = state.store.automation();
    let mut after = String::new();
    loop {
        let page = automation.nurture(&after, 1000).await?;
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        for (id, since) in &page {
            let Some(r) = state.store.get_lead(id).await? else {
                continue;
            };
            let l = &r.lead;
            use leadscore_core::StdField as F;
            let get = |f: F| l.get(f).unwrap_or("").to_owned();
            let score = r.score.as_ref();
            out.write_record([
                id.clone(),
                get(F::FirstName),
                get(F::LastName),
                get(F::Email),
                get(F::Phone),
                get(F::Company),
                get(F::Country),
                score.map(|s| s.score.to_string()).unwrap_or_default(),
                score.map(|s| s.band.clone()).unwrap_or_default(),
                since.to_string(),
            ])
            .map_err(csv_error)?;
        }
        if page.len() < 1000 {
            break;
        }
    }
    let bytes = out.into_inner().map_err(|e| csv_error(e.into_error().into()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"nurture.csv\"",
            ),
        ],
        bytes,
    ))
}

fn csv_error(e: csv::Error) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("could not write the CSV: {e}"),
    )
}

/// `GET /reps`: the declared reps with their open leads and capacity.
pub async fn reps(State(state): State<AppState>, who: Principal) -> ApiResult<Json<Value>> {
    who.require(&MANAGERS, "read the reps' loads")?;
    let loads = state.store.automation().loads().await?;
    let reps: Vec<Value> = state
        .automation
        .rules
        .settings
        .reps
        .iter()
        .map(|r| {
            let l = loads.iter().find(|l| l.rep == r.name);
            json!({
                "name": r.name, "seniority": r.seniority, "capacity": r.capacity, "available": r.available,
                "countries": r.countries, "regions": r.regions, "industries": r.industries, "languages": r.languages,
                "open_leads": l.map_or(0, |l| l.open_leads), "assigned": l.map_or(0, |l| l.assigned),
            })
        })
        .collect();
    Ok(Json(
        json!({"reps": reps, "fallback_owner": state.automation.rules.settings.fallback_owner}),
    ))
}
