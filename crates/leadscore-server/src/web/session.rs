//! Logging in: passwords kept as Argon2id hashes, sessions in a secure,
//! HTTP-only, same-site cookie (only its SHA-256 hash is stored), and a
//! per-session CSRF token that every state-changing request must carry.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use leadscore_core::Timestamp;
use leadscore_store::accounts::{Session, User};

use crate::AppState;
use crate::auth::token_hash;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "ls_session";
/// The header (or form field `csrf`) a state-changing request carries.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts.
pub const SESSION_DAYS: i64 = 7;

/// Equal, in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Did this form come from our own pages? Browsers say so in
/// `Sec-Fetch-Site` (or at least `Origin`); a request without either is not
/// from a browser page and is let through (the session's CSRF token still
/// guards every change).
pub fn same_site(headers: &axum::http::HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|h| h.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match (
        headers
            .get(axum::http::header::ORIGIN)
            .and_then(|h| h.to_str().ok()),
        headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok()),
    ) {
        (Some(origin), Some(host)) => origin.split("://").nth(1) == Some(host),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// Failed sign-ins per user name, to slow password guessing: after
/// [`MAX_FAILURES`] within [`FAILURE_WINDOW`], that name is refused until
/// the window has passed.
#[derive(Debug, Default)]
pub struct Limiter {
    failures: std::sync::Mutex<std::collections::HashMap<String, Vec<std::time::Instant>>>,
}

pub const MAX_FAILURES: usize = 10;
pub const FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl Limiter {
    fn recent(&self, name: &str) -> usize {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let list = f.entry(name.to_lowercase()).or_default();
        list.retain(|t| t.elapsed() < FAILURE_WINDOW);
        list.len()
    }

    pub fn blocked(&self, name: &str) -> bool {
        self.recent(name) >= MAX_FAILURES
    }

    pub fn failed(&self, name: &str) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if f.len() > 100_000 {
            f.retain(|_, v| v.iter().any(|t| t.elapsed() < FAILURE_WINDOW));
        }
        f.entry(name.to_lowercase())
            .or_default()
            .push(std::time::Instant::now());
    }

    pub fn succeeded(&self, name: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&name.to_lowercase());
    }
}

/// The Argon2id hash of a password, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no random bytes: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Does the password match the stored hash?
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A password fit to keep: 10 to 200 characters.
pub fn check_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if !(10..=200).contains(&n) {
        return Err("a password has 10 to 200 characters".into());
    }
    Ok(())
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("the OS gives random bytes");
    hex::encode(b)
}

/// Starts a session for `user`: the cookie's value (to send) and its CSRF token.
pub async fn start(state: &AppState, user: &User) -> Result<(String, String), leadscore_store::StoreError> {
    let value = random_hex(32);
    let csrf = random_hex(16);
    let now = state.now();
    let expires = Timestamp::from_micros(now.as_micros() + SESSION_DAYS * 86_400_000_000);
    state
        .store
        .accounts()
        .create_session(&token_hash(&value), &user.name, &csrf, now, expires)
        .await?;
    Ok((value, csrf))
}

/// The `Set-Cookie` value for a session (or, with `None`, one that ends it).
pub fn cookie(state: &AppState, value: Option<&str>) -> String {
    let secure = if state.settings.web.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    match value {
        Some(v) => format!(
            "{COOKIE_NAME}={v}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            SESSION_DAYS * 86_400
        ),
        None => format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

/// The session cookie's value in a request, if any.
pub fn cookie_value(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The session a request's cookie names, if it is live.
pub async fn of_request(
    parts: &Parts,
    state: &AppState,
) -> Result<Option<(String, Session)>, leadscore_store::StoreError> {
    let Some(value) = cookie_value(&parts.headers) else {
        return Ok(None);
    };
    let hash = token_hash(&value);
    Ok(state
        .store
        .accounts()
        .session(&hash, state.now())
        .await?
        .map(|s| (hash, s)))
}

/// A logged-in person viewing a page; pages without one send them to `/login`.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub session_hash: String,
    pub session: Session,
}

/// Why a page could not be shown to the caller.
#[derive(Debug)]
pub enum NotLoggedIn {
    Redirect,
    Failed(leadscore_store::StoreError),
}

impl axum::response::IntoResponse for NotLoggedIn {
    fn into_response(self) -> axum::response::Response {
        match self {
            NotLoggedIn::Redirect => axum::response::Redirect::to("/login").into_response(),
            NotLoggedIn::Failed(e) => crate::error::ApiError::from(e).into_response(),
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = NotLoggedIn;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match of_request(parts, state).await {
            Ok(Some((session_hash, session))) => Ok(Viewer {
                session_hash,
                session,
            }),
            Ok(None) => Err(NotLoggedIn::Redirect),
            Err(e) => Err(NotLoggedIn::Failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_slowly_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a hash"));
        assert_ne!(h, hash_password("correct horse battery").unwrap(), "salted");
        assert!(check_password("short").is_err());
    }

    #[test]
    fn guessing_is_slowed_and_secrets_compare_whole() {
        let l = Limiter::default();
        for _ in 0..MAX_FAILURES {
            assert!(!l.blocked("An"));
            l.failed("an");
        }
        assert!(l.blocked("AN"));
        assert!(!l.blocked("binh"));
        l.succeeded("an");
        assert!(!l.blocked("an"));
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("abc", "ab"));
    }
}
