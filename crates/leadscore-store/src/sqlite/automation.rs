//! Automation's statements on SQLite: run on the writer thread, in the
//! request's savepoint (a failed guard undoes only this request).

use async_trait::async_trait;
use rusqlite::types::{Value, ValueRef};

use super::Io;
use crate::automation::{Op, OpKind, Rows, SqlRunner, Val, needs_savepoint};
use crate::workflow::for_sqlite;
use crate::{Result, StoreError};

fn bind(v: Val) -> Value {
    match v {
        Val::Null => Value::Null,
        Val::Int(i) => Value::Integer(i),
        Val::Real(r) => Value::Real(r),
        Val::Text(t) => Value::Text(t),
    }
}

fn read_row(r: &rusqlite::Row, n: usize) -> rusqlite::Result<Vec<Val>> {
    (0..n)
        .map(|i| {
            Ok(match r.get_ref(i)? {
                ValueRef::Null => Val::Null,
                ValueRef::Integer(i) => Val::Int(i),
                ValueRef::Real(f) => Val::Real(f),
                ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Val::Text(String::from_utf8_lossy(b).into_owned()),
            })
        })
        .collect()
}

pub(super) fn query(c: &rusqlite::Connection, sql: &str, args: Vec<Val>) -> Result<Rows> {
    let mut stmt = c.prepare_cached(&for_sqlite(sql))?;
    let n = stmt.column_count();
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args.into_iter().map(bind)), |r| {
            read_row(r, n)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Runs `ops` in order: the rows of each, or `Err(i)` at the first guard `i`
/// that changed no row (the statements before it stay done: the caller
/// undoes them).
fn run_ops(c: &rusqlite::Connection, ops: Vec<Op>) -> Result<std::result::Result<Vec<Rows>, usize>> {
    let mut out = Vec::with_capacity(ops.len());
    for (i, op) in ops.into_iter().enumerate() {
        match op.kind {
            OpKind::Query => out.push(query(c, &op.sql, op.args)?),
            kind => {
                let n = c
                    .prepare_cached(&for_sqlite(&op.sql))?
                    .execute(rusqlite::params_from_iter(op.args.into_iter().map(bind)))?;
                if n == 0 && kind == OpKind::Guard {
                    return Ok(Err(i));
                }
                out.push(Vec::new());
            }
        }
    }
    Ok(Ok(out))
}

/// The index of the guard that changed nothing, carried out of the savepoint.
const GUARD: &str = "automation guard ";

#[async_trait]
impl SqlRunner for Io {
    fn postgres(&self) -> bool {
        false
    }

    async fn run(&self, ops: Vec<Op>) -> Result<std::result::Result<Vec<Rows>, usize>> {
        let outcome = self
            .write(move |w| match run_ops(&w.conn, ops)? {
                Ok(rows) => Ok(rows),
                // Out through the request's savepoint, which undoes it.
                Err(i) => Err(StoreError::Invalid(format!("{GUARD}{i}"))),
            })
            .await;
        match outcome {
            Ok(rows) => Ok(Ok(rows)),
            Err(StoreError::Invalid(m)) if m.starts_with(GUARD) => {
                Ok(Err(m[GUARD.len()..].parse().unwrap_or(0)))
            }
            Err(e) => Err(e),
        }
    }

    async fn run_each(&self, lists: Vec<Vec<Op>>) -> Result<Vec<std::result::Result<Vec<Rows>, usize>>> {
        self.write(move |w| {
            let mut out = Vec::with_capacity(lists.len());
            for ops in lists {
                let own = needs_savepoint(&ops);
                if own {
                    w.conn.execute_batch("SAVEPOINT each")?;
                }
                let outcome = run_ops(&w.conn, ops)?;
                if own {
                    w.conn.execute_batch(if outcome.is_ok() {
                        "RELEASE each"
                    } else {
                        "ROLLBACK TO each; RELEASE each"
                    })?;
                }
                out.push(outcome);
            }
            Ok(out)
        })
        .await
    }

    async fn read(&self, sql: String, args: Vec<Val>) -> Result<Rows> {
        Io::read(self, move |c| query(c, &sql, args)).await
    }
}
