//! Automation's statements on SQLite: run on the writer thread, in the
//! request's savepoint (a failed guard undoes only this request).

use async_trait::async_trait;
use rusqlite::types::{Value, ValueRef};

use super::Io;
use crate::automation::{Op, OpKind, Rows, SqlRunner, Val};
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

fn query(c: &rusqlite::Connection, sql: &str, args: Vec<Val>) -> Result<Rows> {
    let mut stmt = c.prepare_cached(&for_sqlite(sql))?;
    let n = stmt.column_count();
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args.into_iter().map(bind)), |r| {
            read_row(r, n)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
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
            .write(move |w| {
                let mut out = Vec::with_capacity(ops.len());
                for (i, op) in ops.into_iter().enumerate() {
                    match op.kind {
                        OpKind::Query => out.push(query(&w.conn, &op.sql, op.args)?),
                        kind => {
                            let n = w
                                .conn
                                .prepare_cached(&for_sqlite(&op.sql))?
                                .execute(rusqlite::params_from_iter(op.args.into_iter().map(bind)))?;
                            if n == 0 && kind == OpKind::Guard {
                                return Err(StoreError::Invalid(format!("{GUARD}{i}")));
                            }
                            out.push(Vec::new());
                        }
                    }
                }
                Ok(out)
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

    async fn read(&self, sql: String, args: Vec<Val>) -> Result<Rows> {
        Io::read(self, move |c| query(c, &sql, args)).await
    }
}
