//! People who log in to the web pages, and their sessions. The SQL is
//! written once and run by either adapter (see [`crate::automation`]).

use std::sync::Arc;

use leadscore_core::Timestamp;

use crate::automation::{Op, OpKind, SqlRunner, Val, text};
use crate::{Result, StoreError};

/// The tables, created by both adapters at start.
pub(crate) const SCHEMA: &str = include_str!("accounts.sql");

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub name: String,
    /// An Argon2id PHC string; never the password.
    pub password_hash: String,
    pub role: String,
    /// `en`, `vi` or `uk`.
    pub locale: String,
    pub created_at: Timestamp,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub user: User,
    pub csrf: String,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Accounts {
    sql: Arc<dyn SqlRunner>,
}

const USER_SELECT: &str = "SELECT name, password_hash, role, locale, created_at, active FROM users";

fn user_from(r: &[Val]) -> Result<User> {
    Ok(User {
        name: text(&r[0])?,
        password_hash: text(&r[1])?,
        role: text(&r[2])?,
        locale: text(&r[3])?,
        created_at: Timestamp::from_micros(r[4].int().unwrap_or(0)),
        active: r[5].int() == Some(1),
    })
}

fn op(sql: &str, args: Vec<Val>, kind: OpKind) -> Op {
    Op {
        sql: sql.to_owned(),
        args,
        kind,
    }
}

impl Accounts {
    pub(crate) fn new(sql: Arc<dyn SqlRunner>) -> Accounts {
        Accounts { sql }
    }

    /// Creates a user, or replaces the password, role and locale of the
    /// one with that name (`leadscore user create` run again resets it).
    /// Replacing a password ends the user's sessions.
    pub async fn put_user(&self, u: &User) -> Result<()> {
        self.sql
            .run(vec![
                op(
                    "DELETE FROM sessions WHERE user_name = $1",
                    vec![u.name.as_str().into()],
                    OpKind::Exec,
                ),
                op(
                    "INSERT INTO users (name, password_hash, role, locale, created_at, active) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET \
                     password_hash = excluded.password_hash, role = excluded.role, \
                     locale = excluded.locale, active = excluded.active",
                    vec![
                        u.name.as_str().into(),
                        u.password_hash.as_str().into(),
                        u.role.as_str().into(),
                        u.locale.as_str().into(),
                        u.created_at.into(),
                        i64::from(u.active).into(),
                    ],
                    OpKind::Exec,
                ),
            ])
            .await?
            .map_err(|_| StoreError::Database("put user".into()))?;
        Ok(())
    }

    pub async fn user(&self, name: &str) -> Result<Option<User>> {
        self.sql
            .read(format!("{USER_SELECT} WHERE name = $1"), vec![name.into()])
            .await?
            .first()
            .map(|r| user_from(r))
            .transpose()
    }

    pub async fn users(&self) -> Result<Vec<User>> {
        self.sql
            .read(format!("{USER_SELECT} ORDER BY name"), vec![])
            .await?
            .iter()
            .map(|r| user_from(r))
            .collect()
    }

    /// Changes a user's language.
    pub async fn set_locale(&self, name: &str, locale: &str) -> Result<bool> {
        Ok(self
            .sql
            .run(vec![op(
                "UPDATE users SET locale = $2 WHERE name = $1",
                vec![name.into(), locale.into()],
                OpKind::Guard,
            )])
            .await?
            .is_ok())
    }

    /// Stores a session (by the hash of its cookie value).
    pub async fn create_session(
        &self,
        id_hash: &str,
        user: &str,
        csrf: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        self.sql
            .run(vec![
                // Old sessions go when new ones come.
                op("DELETE FROM sessions WHERE expires_at <= $1", vec![now.into()], OpKind::Exec),
                op(
                    "INSERT INTO sessions (id_hash, user_name, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                    vec![id_hash.into(), user.into(), csrf.into(), now.into(), expires_at.into()],
                    OpKind::Exec,
                ),
            ])
            .await?
            .map_err(|_| StoreError::Database("create session".into()))?;
        Ok(())
    }

    /// The live session with this hash, with its (active) user.
    pub async fn session(&self, id_hash: &str, now: Timestamp) -> Result<Option<Session>> {
        let rows = self
            .sql
            .read(
                "SELECT u.name, u.password_hash, u.role, u.locale, u.created_at, u.active, s.csrf, s.expires_at \
                 FROM sessions s JOIN users u ON u.name = s.user_name \
                 WHERE s.id_hash = $1 AND s.expires_at > $2 AND u.active = 1"
                    .to_owned(),
                vec![id_hash.into(), now.into()],
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(Session {
            user: user_from(&r[..6])?,
            csrf: r[6].text().unwrap_or_default().to_owned(),
            expires_at: Timestamp::from_micros(r[7].int().unwrap_or(0)),
        }))
    }

    pub async fn end_session(&self, id_hash: &str) -> Result<()> {
        self.sql
            .run(vec![op(
                "DELETE FROM sessions WHERE id_hash = $1",
                vec![id_hash.into()],
                OpKind::Exec,
            )])
            .await?
            .map_err(|_| StoreError::Database("end session".into()))?;
        Ok(())
    }
}
