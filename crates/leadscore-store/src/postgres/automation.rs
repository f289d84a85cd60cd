//! Automation's statements on PostgreSQL: one transaction per list, retried
//! after a deadlock or a serialization failure.

use async_trait::async_trait;
use deadpool_postgres::Pool;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::{Fail, TxResult};
use crate::automation::{Op, OpKind, Rows, SqlRunner, Val, needs_savepoint};
use crate::{Result, StoreError};

#[derive(Debug, Clone)]
pub(crate) struct PgSql {
    pub pool: Pool,
}

/// SQL NULL for a parameter of any type.
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(
        &self,
        _: &Type,
        _: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(IsNull::Yes)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    to_sql_checked!();
}

fn bind(v: &Val) -> Box<dyn ToSql + Sync + Send> {
    match v {
        Val::Null => Box::new(Null),
        Val::Int(i) => Box::new(*i),
        Val::Real(r) => Box::new(*r),
        Val::Text(t) => Box::new(t.clone()),
    }
}

fn read_row(r: &tokio_postgres::Row) -> std::result::Result<Vec<Val>, tokio_postgres::Error> {
    (0..r.len())
        .map(|i| {
            let ty = r.columns()[i].type_();
            Ok(if *ty == Type::INT8 {
                r.try_get::<_, Option<i64>>(i)?.map_or(Val::Null, Val::Int)
            } else if *ty == Type::INT4 {
                r.try_get::<_, Option<i32>>(i)?
                    .map_or(Val::Null, |v| Val::Int(v.into()))
            } else if *ty == Type::INT2 {
                r.try_get::<_, Option<i16>>(i)?
                    .map_or(Val::Null, |v| Val::Int(v.into()))
            } else if *ty == Type::FLOAT8 {
                r.try_get::<_, Option<f64>>(i)?.map_or(Val::Null, Val::Real)
            } else if *ty == Type::BOOL {
                r.try_get::<_, Option<bool>>(i)?
                    .map_or(Val::Null, |b| Val::Int(b.into()))
            } else {
                r.try_get::<_, Option<String>>(i)?.map_or(Val::Null, Val::Text)
            })
        })
        .collect()
}

impl PgSql {
    async fn run_once(&self, ops: &[Op]) -> TxResult<std::result::Result<Vec<Rows>, usize>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let outcome = run_ops(&tx, ops).await?;
        if outcome.is_ok() {
            tx.commit().await?;
        }
        Ok(outcome)
    }

    async fn run_each_once(&self, lists: &[Vec<Op>]) -> TxResult<Vec<std::result::Result<Vec<Rows>, usize>>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let mut out = Vec::with_capacity(lists.len());
        for ops in lists {
            let own = needs_savepoint(ops);
            if own {
                tx.batch_execute("SAVEPOINT each").await?;
            }
            let outcome = run_ops(&tx, ops).await?;
            if own {
                tx.batch_execute(if outcome.is_ok() {
                    "RELEASE SAVEPOINT each"
                } else {
                    "ROLLBACK TO SAVEPOINT each; RELEASE SAVEPOINT each"
                })
                .await?;
            }
            out.push(outcome);
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// Runs `ops` in order in `tx`: the rows of each, or `Err(i)` at the first
/// guard `i` that changed no row (the caller undoes what ran before it).
async fn run_ops(
    tx: &deadpool_postgres::Transaction<'_>,
    ops: &[Op],
) -> TxResult<std::result::Result<Vec<Rows>, usize>> {
    let mut out = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let stmt = tx.prepare_cached(&op.sql).await?;
        let boxed: Vec<Box<dyn ToSql + Sync + Send>> = op.args.iter().map(bind).collect();
        let params: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|a| &**a as _).collect();
        match op.kind {
            OpKind::Query => {
                let rows = tx.query(&stmt, &params).await?;
                out.push(rows.iter().map(read_row).collect::<std::result::Result<_, _>>()?);
            }
            kind => {
                let n = tx.execute(&stmt, &params).await?;
                if n == 0 && kind == OpKind::Guard {
                    return Ok(Err(i));
                }
                out.push(Vec::new());
            }
        }
    }
    Ok(Ok(out))
}

/// Runs `once` until it does not fail on a race (a deadlock or a
/// serialization failure), waiting a little longer each time.
async fn retrying<T, F, Fut>(mut once: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = TxResult<T>>,
{
    let mut attempt = 0u64;
    loop {
        attempt += 1;
        match once().await {
            Ok(v) => return Ok(v),
            Err(Fail::Retry(msg)) if attempt < 8 => {
                tracing::debug!(attempt, "retrying an automation transaction after a race: {msg}");
                tokio::time::sleep(std::time::Duration::from_millis(attempt * 5)).await;
            }
            Err(f) => return Err(StoreError::from(f)),
        }
    }
}

#[async_trait]
impl SqlRunner for PgSql {
    fn postgres(&self) -> bool {
        true
    }

    async fn run(&self, ops: Vec<Op>) -> Result<std::result::Result<Vec<Rows>, usize>> {
        retrying(|| self.run_once(&ops)).await
    }

    async fn run_each(&self, lists: Vec<Vec<Op>>) -> Result<Vec<std::result::Result<Vec<Rows>, usize>>> {
        retrying(|| self.run_each_once(&lists)).await
    }

    async fn read(&self, sql: String, args: Vec<Val>) -> Result<Rows> {
        let client = self.pool.get().await.map_err(Fail::from)?;
        let stmt = client.prepare_cached(&sql).await.map_err(Fail::from)?;
        let boxed: Vec<Box<dyn ToSql + Sync + Send>> = args.iter().map(bind).collect();
        let params: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|a| &**a as _).collect();
        let rows = client.query(&stmt, &params).await.map_err(Fail::from)?;
        Ok(rows
            .iter()
            .map(read_row)
            .collect::<std::result::Result<_, _>>()
            .map_err(Fail::from)?)
    }
}
