//! Helpers for test suites that run against PostgreSQL: each test gets a
//! schema of its own, so tests run in parallel on one database.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Schemas of earlier runs older than this are dropped when a new one is made.
const STALE_NANOS: u128 = 3_600_000_000_000;

/// Creates a uniquely named schema (`{prefix}_{nanos}_{n}`) in the database
/// at `base` and returns a URL whose connections use it. Schemas with the
/// same prefix left by runs over an hour ago are dropped first.
pub async fn fresh_postgres_schema(base: &str, prefix: &str) -> Result<String, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let pattern = format!("{prefix}\\_%");
    for row in client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1",
            &[&pattern],
        )
        .await?
    {
        let schema: String = row.get(0);
        let made = schema
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('_').nth(1))
            .and_then(|n| n.parse::<u128>().ok());
        if made.is_some_and(|m| m + STALE_NANOS < now) {
            let _ = client
                .batch_execute(&format!(
                    "SET lock_timeout = '2s'; DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                ))
                .await;
        }
    }
    static N: AtomicU64 = AtomicU64::new(0);
    let name = format!("{prefix}_{now}_{}", N.fetch_add(1, Ordering::Relaxed));
    client.batch_execute(&format!("CREATE SCHEMA \"{name}\"")).await?;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}options=-c%20search_path%3D{name}"))
}
