//! The web pages for reps, managers and marketing ops (issue 7), served by
//! the binary itself: nothing is fetched from another site. Pages are small
//! HTML shells; their script reads and writes through the same JSON API as
//! every other client, authenticated by the session cookie and carrying the
//! page's CSRF token on every change.

pub mod i18n;
pub mod session;

use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::Principal;
use session::Viewer;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(queue))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/language", post(language))
        .route("/leads/{id}", get(lead_page))
        .route("/overview", get(overview_page))
        .route("/models", get(models_page))
        .route("/admin", get(admin_page))
        .route("/assets/{file}", get(asset))
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (CSS, "text/css; charset=utf-8"),
        "app.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")],
        body,
    )
        .into_response()
}

/// Headers every page carries: no framing, no sniffing, scripts and styles
/// from this server only.
fn page_headers() -> [(header::HeaderName, &'static str); 5] {
    [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        // Pages carry a CSRF token and lead data: never kept by caches.
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ]
}

/// A whole page: `kind` tells the script what to draw; `data` goes to it as JSON.
fn page(
    locale: &str,
    title: &str,
    viewer: Option<&Viewer>,
    kind: &str,
    data: serde_json::Value,
    body: &str,
) -> String {
    let w = |k| i18n::word(locale, k);
    let nav = match viewer {
        Some(v) => {
            let options: String = i18n::LOCALES
                .iter()
                .map(|l| {
                    let name = match *l {
                        "vi" => "Tiếng Việt",
                        "uk" => "Українська",
                        _ => "English",
                    };
                    let sel = if *l == locale { " selected" } else { "" };
                    format!("<option value=\"{l}\"{sel}>{name}</option>")
                })
                .collect();
            format!(
                "<nav aria-label=\"{app}\"><a href=\"/\" class=\"brand\">{app}</a> <a href=\"/\">{queue}</a>{more}\
                 <span class=\"spacer\"></span><span class=\"who\">{user} · {role}</span>\
                 <form method=\"post\" action=\"/language\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <input type=\"hidden\" name=\"back\" value=\"\" data-back>\
                 <label>{lang} <select name=\"locale\">{options}</select></label> <button type=\"submit\" class=\"secondary\">OK</button></form>\
                 <form method=\"post\" action=\"/logout\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <button type=\"submit\">{logout}</button></form></nav>",
                app = esc(w("app")),
                queue = esc(w("nav.queue")),
                user = esc(&v.session.user.name),
                role = esc(w(&format!("role.{}", v.session.user.role))),
                csrf = esc(&v.session.csrf),
                lang = esc(w("nav.language")),
                logout = esc(w("nav.logout")),
                more = match v.session.user.role.as_str() {
                    "admin" => format!(
                        " <a href=\"/overview\">{}</a> <a href=\"/models\">{}</a> <a href=\"/admin\">{}</a>",
                        esc(w("nav.overview")),
                        esc(w("nav.models")),
                        esc(w("nav.admin"))
                    ),
                    "manager" => format!(
                        " <a href=\"/overview\">{}</a> <a href=\"/models\">{}</a>",
                        esc(w("nav.overview")),
                        esc(w("nav.models"))
                    ),
                    _ => String::new(),
                },
            )
        }
        None => String::new(),
    };
    let boot = json!({
        "kind": kind,
        "locale": locale,
        "csrf": viewer.map(|v| v.session.csrf.clone()),
        "user": viewer.map(|v| v.session.user.name.clone()),
        "role": viewer.map(|v| v.session.user.role.clone()),
        "words": i18n::dictionary(locale),
        "data": data,
    });
    // JSON in a non-executable script element; `<` escaped so no text in it
    // can end the element.
    let boot = boot.to_string().replace('<', "\\u003c");
    format!(
        "<!doctype html><html lang=\"{locale}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · leadscore</title><link rel=\"stylesheet\" href=\"/assets/app.css\"></head>\
         <body>{nav}<main id=\"main\">{body}</main>\
         <script type=\"application/json\" id=\"boot\">{boot}</script>\
         <script src=\"/assets/app.js\"></script></body></html>",
        title = esc(title),
    )
}

fn locale_of(headers: &HeaderMap, state: &AppState) -> String {
    i18n::from_accept_language(
        headers.get(header::ACCEPT_LANGUAGE).and_then(|h| h.to_str().ok()),
        &state.settings.web.default_locale,
    )
}

fn login_form(locale: &str, error: bool) -> String {
    let w = |k| esc(i18n::word(locale, k));
    let error = if error {
        format!("<p class=\"error\" role=\"alert\">{}</p>", w("login.failed"))
    } else {
        String::new()
    };
    format!(
        "<section class=\"login\"><h1>{title}</h1>{error}<form method=\"post\" action=\"/login\">\
         <label>{name}<input name=\"name\" autocomplete=\"username\" required autofocus></label>\
         <label>{password}<input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\">{submit}</button></form></section>",
        title = w("login.title"),
        name = w("login.name"),
        password = w("login.password"),
        submit = w("login.submit"),
    )
}

/// The login page (after a refused sign-in: with the message, and 401).
fn login_response(locale: &str, refused: bool) -> Response {
    let body = login_form(locale, refused);
    let status = if refused {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let title = i18n::word(locale, "login.title");
    (
        status,
        page_headers(),
        page(locale, title, None, "login", json!({}), &body),
    )
        .into_response()
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    login_response(&locale_of(&headers, &state), false)
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
}

/// Failed sign-ins per name (see `session::Limiter`).
static LIMITER: std::sync::LazyLock<session::Limiter> = std::sync::LazyLock::new(session::Limiter::default);

async fn login(State(state): State<AppState>, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    let locale = locale_of(&headers, &state);
    if !session::same_site(&headers) {
        return (StatusCode::FORBIDDEN, "sign in from this site's own page").into_response();
    }
    if LIMITER.blocked(f.name.trim()) {
        tracing::warn!("sign-ins refused for a while after repeated failures");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, session::FAILURE_WINDOW.as_secs().to_string())],
            "too many failed sign-ins for this name; try again in 15 minutes",
        )
            .into_response();
    }
    let user = match state.store.accounts().user(f.name.trim()).await {
        Ok(u) => u,
        Err(e) => return crate::error::ApiError::from(e).into_response(),
    };
    // The hash is checked even for an unknown name (against a made-up
    // one), so the answer takes as long either way; off the async threads.
    static DUMMY: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| session::hash_password("not anyone's password").unwrap_or_default());
    let (password, stored) = (f.password.clone(), user.as_ref().map(|u| u.password_hash.clone()));
    let matched = tokio::task::spawn_blocking(move || {
        let hash = stored.unwrap_or_else(|| DUMMY.clone());
        session::verify_password(&password, &hash)
    })
    .await
    .unwrap_or(false);
    let ok = matched && user.as_ref().is_some_and(|u| u.active);
    let Some(user) = user.filter(|_| ok) else {
        tracing::info!("a sign-in was refused");
        LIMITER.failed(f.name.trim());
        return login_response(&locale, true);
    };
    LIMITER.succeeded(f.name.trim());
    // A session the browser already had ends: one person, one session here.
    if let Some(old) = session::cookie_value(&headers) {
        let _ = state
            .store
            .accounts()
            .end_session(&crate::auth::token_hash(&old))
            .await;
    }
    match session::start(&state, &user).await {
        Ok((value, _csrf)) => (
            StatusCode::SEE_OTHER,
            [
                (header::SET_COOKIE, session::cookie(&state, Some(&value))),
                (header::LOCATION, "/".to_owned()),
            ],
        )
            .into_response(),
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
    #[serde(default)]
    locale: Option<String>,
    /// The page to go back to (a path on this site).
    #[serde(default)]
    back: Option<String>,
}

/// A form's CSRF token is the session's, and it came from our own page.
fn form_ok(headers: &HeaderMap, viewer: &Viewer, f: &CsrfForm) -> bool {
    session::same_site(headers) && session::same_secret(&f.csrf, &viewer.session.csrf)
}

/// A path on this site: `/` and more, never `//host` or a backslash.
fn local_path(p: &str) -> Option<&str> {
    (p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') && !p.chars().any(char::is_control))
        .then_some(p)
}

fn csrf_refused() -> Response {
    (StatusCode::FORBIDDEN, "the form is out of date; reload the page").into_response()
}

async fn logout(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !form_ok(&headers, &viewer, &f) {
        return csrf_refused();
    }
    if let Err(e) = state.store.accounts().end_session(&viewer.session_hash).await {
        return crate::error::ApiError::from(e).into_response();
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, session::cookie(&state, None)),
            (header::LOCATION, "/login".to_owned()),
        ],
    )
        .into_response()
}

async fn language(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !form_ok(&headers, &viewer, &f) {
        return csrf_refused();
    }
    let Some(locale) = f.locale.filter(|l| i18n::known(l)) else {
        return (StatusCode::UNPROCESSABLE_ENTITY, "unknown language").into_response();
    };
    if let Err(e) = state
        .store
        .accounts()
        .set_locale(&viewer.session.user.name, &locale)
        .await
    {
        return crate::error::ApiError::from(e).into_response();
    }
    // Back where the form was.
    let back = f.back.as_deref().and_then(local_path).unwrap_or("/").to_owned();
    Redirect::to(&back).into_response()
}

/// The rep's queue (`/`): their leads, most promising first.
async fn queue(State(state): State<AppState>, viewer: Viewer) -> Response {
    let locale = viewer.session.user.locale.clone();
    // The band filter offers the active models' bands, best first.
    let mut bands: Vec<String> = Vec::new();
    if let Ok(Some(set)) = state.store.active_model().await {
        for m in &set.members {
            for b in m.model.bands.iter().rev() {
                if !bands.contains(&b.name) {
                    bands.push(b.name.clone());
                }
            }
        }
    }
    let body = format!(
        "<h1>{}</h1><div id=\"queue\"></div>",
        esc(i18n::word(&locale, "queue.title"))
    );
    (
        page_headers(),
        page(
            &locale,
            i18n::word(&locale, "nav.queue"),
            Some(&viewer),
            "queue",
            json!({"bands": bands}),
            &body,
        ),
    )
        .into_response()
}

/// A lead's page; 404 when the viewer may not see the lead.
async fn lead_page(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    let locale = viewer.session.user.locale.clone();
    let visible = match Principal::of_user(&viewer.session.user) {
        Some(who) => crate::routes::visible_lead(&state, &who, &id).await.is_ok(),
        None => false,
    };
    if !visible {
        let body = format!(
            "<h1>{}</h1><p><a href=\"/\">{}</a></p>",
            esc(i18n::word(&locale, "lead.not_found")),
            esc(i18n::word(&locale, "lead.back"))
        );
        return (
            StatusCode::NOT_FOUND,
            page_headers(),
            page(
                &locale,
                i18n::word(&locale, "lead.not_found"),
                Some(&viewer),
                "missing",
                json!({}),
                &body,
            ),
        )
            .into_response();
    }
    let body = "<div id=\"lead\"></div>";
    (
        page_headers(),
        page(&locale, &id, Some(&viewer), "lead", json!({"id": id}), body),
    )
        .into_response()
}

/// A page only some roles may see; others get a 403 page.
fn restricted(viewer: &Viewer, roles: &[&str], kind: &str, title_key: &str, body: &str) -> Response {
    let locale = viewer.session.user.locale.clone();
    if !roles.contains(&viewer.session.user.role.as_str()) {
        let body = format!("<h1>{}</h1>", esc(i18n::word(&locale, "page.forbidden")));
        return (
            StatusCode::FORBIDDEN,
            page_headers(),
            page(
                &locale,
                i18n::word(&locale, "page.forbidden"),
                Some(viewer),
                "forbidden",
                json!({}),
                &body,
            ),
        )
            .into_response();
    }
    let body = format!("<h1>{}</h1>{body}", esc(i18n::word(&locale, title_key)));
    (
        page_headers(),
        page(
            &locale,
            i18n::word(&locale, title_key),
            Some(viewer),
            kind,
            json!({}),
            &body,
        ),
    )
        .into_response()
}

/// The manager's overview: leads by band and by rep, MQLs per week, hot
/// leads nobody has touched, ratings across reps, the model report.
async fn overview_page(viewer: Viewer) -> Response {
    restricted(
        &viewer,
        &["admin", "manager"],
        "overview",
        "nav.overview",
        "<div id=\"overview\"></div>",
    )
}

/// Marketing ops: the model editor, backtest and activation.
async fn models_page(viewer: Viewer) -> Response {
    restricted(
        &viewer,
        &["admin", "manager"],
        "models",
        "nav.models",
        "<div id=\"models\"></div>",
    )
}

/// Admins: users and webhooks.
async fn admin_page(viewer: Viewer) -> Response {
    restricted(
        &viewer,
        &["admin"],
        "admin",
        "nav.admin",
        "<div id=\"admin\"></div>",
    )
}
