//! Who may do what: bearer tokens, stored only as their SHA-256 hash, each
//! with a role (and, for reps, the user whose leads they see).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use leadscore_store::{LeadRecord, TokenRecord};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Manager,
    Rep,
    Ingest,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "admin" => Role::Admin,
            "manager" => Role::Manager,
            "rep" => Role::Rep,
            "ingest" => Role::Ingest,
            _ => return None,
        })
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Rep => "rep",
            Role::Ingest => "ingest",
        }
    }
}

/// The caller of a request, from its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
    pub user: Option<String>,
}

impl Principal {
    /// The principal of a person signed in to the web pages; `None` when
    /// their stored role is not one this version knows.
    pub fn of_user(user: &leadscore_store::accounts::User) -> Option<Principal> {
        Some(Principal {
            role: Role::parse(&user.role)?,
            user: Some(user.name.clone()),
        })
    }

    /// The name recorded on what the caller does: its user, or its role.
    pub fn actor(&self) -> String {
        self.user.clone().unwrap_or_else(|| self.role.as_str().to_owned())
    }

    /// Refuses (403) unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "a `{}` token may not {what}",
                self.role.as_str()
            )))
        }
    }

    /// Can the caller see this lead? Reps see only the leads they own.
    pub fn sees(&self, lead: &LeadRecord) -> bool {
        match self.role {
            Role::Admin | Role::Manager => true,
            Role::Rep => self.user.is_some() && lead.owner == self.user,
            Role::Ingest => false,
        }
    }
}

/// A new secret token and the hash to store for it.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS gives random bytes");
    let secret = format!("lsk_{}", hex::encode(bytes));
    let hash = token_hash(&secret);
    (secret, hash)
}

pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Recently checked tokens, so a busy client does not cost a database read
/// per request. Entries live for a short while only.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Instant, Option<Principal>)>>,
}

const TOKEN_TTL: Duration = Duration::from_secs(30);

impl TokenCache {
    fn get(&self, hash: &str) -> Option<Option<Principal>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(hash)
            .filter(|(at, _)| at.elapsed() < TOKEN_TTL)
            .map(|(_, p)| p.clone())
    }

    fn put(&self, hash: String, p: Option<Principal>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > 10_000 {
            entries.retain(|_, (at, _)| at.elapsed() < TOKEN_TTL);
        }
        entries.insert(hash, (Instant::now(), p));
    }
}

fn principal_of(t: &TokenRecord) -> Option<Principal> {
    Some(Principal {
        role: Role::parse(&t.role)?,
        user: t.user.clone(),
    })
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            // The web pages: a session cookie, and for a change its CSRF token.
            if let Some((_, session)) = crate::web::session::of_request(parts, state).await? {
                let safe = matches!(parts.method, axum::http::Method::GET | axum::http::Method::HEAD);
                let sent = parts
                    .headers
                    .get(crate::web::session::CSRF_HEADER)
                    .and_then(|h| h.to_str().ok());
                if !safe && !sent.is_some_and(|t| crate::web::session::same_secret(t, &session.csrf)) {
                    return Err(ApiError::forbidden(
                        "a change from the web pages carries the page's CSRF token (X-CSRF-Token)",
                    ));
                }
                return Principal::of_user(&session.user)
                    .ok_or_else(|| ApiError::unauthorized("the session's user has no valid role"));
            }
            return Err(ApiError::unauthorized(
                "send `Authorization: Bearer TOKEN` (make one with `leadscore token create`)",
            ));
        };
        let secret = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer TOKEN`"))?;
        let hash = token_hash(secret);
        let found = match state.tokens.get(&hash) {
            Some(p) => p,
            None => {
                let p = state
                    .store
                    .find_token(&hash)
                    .await?
                    .as_ref()
                    .and_then(principal_of);
                state.tokens.put(hash, p.clone());
                p
            }
        };
        found.ok_or_else(|| ApiError::unauthorized("the token is not valid"))
    }
}
