//! Figures for the manager's overview, computed by the database (one query
//! each, the same SQL on both adapters).

use std::sync::Arc;

use leadscore_core::Timestamp;
use serde::Serialize;

use crate::Result;
use crate::automation::{Rows, SqlRunner, Val};

#[derive(Debug, Clone)]
pub struct Stats {
    sql: Arc<dyn SqlRunner>,
}

/// A count under one or two names (e.g. owner and band).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Count {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    pub count: i64,
}

/// A lead waiting for someone: id, name, owner, score, band.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Waiting {
    pub id: String,
    pub name: String,
    pub owner: Option<String>,
    pub score: Option<f64>,
    pub band: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    pub by_band: Vec<Count>,
    pub by_owner_band: Vec<Count>,
    pub ratings_by_owner: Vec<Count>,
    /// Leads that became MQL, per week (the week's Monday, UTC).
    pub mqls_per_week: Vec<Count>,
    pub untouched_hot: Vec<Waiting>,
}

const WEEK: i64 = 7 * 86_400_000_000;
/// 1970-01-01 was a Thursday; weeks start on Monday.
const MONDAY_SHIFT: i64 = 3 * 86_400_000_000;

fn text(v: &Val) -> String {
    match v {
        Val::Text(t) => t.clone(),
        Val::Int(i) => i.to_string(),
        Val::Real(r) => r.to_string(),
        Val::Null => String::new(),
    }
}

fn counts(rows: Rows, two: bool) -> Vec<Count> {
    rows.into_iter()
        .map(|r| Count {
            key: text(&r[0]),
            sub: two.then(|| text(&r[1])),
            count: r[if two { 2 } else { 1 }].int().unwrap_or(0),
        })
        .collect()
}

impl Stats {
    pub(crate) fn new(sql: Arc<dyn SqlRunner>) -> Stats {
        Stats { sql }
    }

    /// The overview as of `now`: MQLs of the last `weeks` weeks, and the
    /// leads in `hot_bands` whose status is still `new` with no activity logged.
    pub async fn overview(&self, now: Timestamp, weeks: i64, hot_bands: &[String]) -> Result<Overview> {
        let q = |sql: &str, args: Vec<Val>| self.sql.read(sql.to_owned(), args);
        let by_band = counts(
            q(
                "SELECT COALESCE(band, '') AS b, COUNT(*) FROM leads GROUP BY b ORDER BY b",
                vec![],
            )
            .await?,
            false,
        );
        let by_owner_band = counts(
            q(
                "SELECT COALESCE(owner, '') AS o, COALESCE(band, '') AS b, COUNT(*) FROM leads GROUP BY o, b ORDER BY o, b",
                vec![],
            )
            .await?,
            true,
        );
        let ratings_by_owner = counts(
            q(
                "SELECT COALESCE(l.owner, '') AS o, w.rating AS r, COUNT(*) FROM leads l JOIN workflow w ON w.lead = l.id \
                 WHERE w.rating IS NOT NULL GROUP BY o, r ORDER BY o, r",
                vec![],
            )
            .await?,
            true,
        );
        // Whole weeks, Monday to Monday, the current one included.
        let this_week = (now.as_micros() + MONDAY_SHIFT).div_euclid(WEEK);
        let first_week = this_week - (weeks - 1).max(0);
        let since = first_week * WEEK - MONDAY_SHIFT;
        let mqls = q(
            "SELECT CAST((at + $2) / $3 AS BIGINT) AS wk, COUNT(*) FROM \
             (SELECT at, CASE WHEN mql THEN 1 ELSE 0 END AS m, \
                     LAG(CASE WHEN mql THEN 1 ELSE 0 END) OVER (PARTITION BY lead ORDER BY seq) AS prev \
              FROM history) h \
             WHERE m = 1 AND (prev IS NULL OR prev = 0) AND at >= $1 GROUP BY wk ORDER BY wk",
            vec![since.into(), MONDAY_SHIFT.into(), WEEK.into()],
        )
        .await?;
        // Every week of the span, with 0 where no lead became MQL.
        let found: std::collections::HashMap<i64, i64> = mqls
            .into_iter()
            .map(|r| (r[0].int().unwrap_or(0), r[1].int().unwrap_or(0)))
            .collect();
        let mqls_per_week = (first_week..=this_week)
            .map(|w| Count {
                key: Timestamp::from_micros(w * WEEK - MONDAY_SHIFT).to_string()[..10].to_owned(),
                sub: None,
                count: found.get(&w).copied().unwrap_or(0),
            })
            .collect();
        let marks: Vec<String> = (0..hot_bands.len()).map(|i| format!("${}", i + 1)).collect();
        let untouched_hot = if hot_bands.is_empty() {
            Vec::new()
        } else {
            q(
                &format!(
                    "SELECT l.id, COALESCE(l.first_name, '') || ' ' || COALESCE(l.last_name, ''), l.owner, l.rank, l.band, l.created_at \
                     FROM leads l LEFT JOIN workflow w ON w.lead = l.id \
                     WHERE l.band IN ({}) AND COALESCE(w.status, 'new') = 'new' \
                     AND NOT EXISTS (SELECT 1 FROM lead_log g WHERE g.lead = l.id AND g.kind = 'activity') \
                     ORDER BY l.rank DESC, l.id LIMIT 50",
                    marks.join(", ")
                ),
                hot_bands.iter().map(Val::from).collect(),
            )
            .await?
            .into_iter()
            .map(|r| Waiting {
                id: text(&r[0]),
                name: text(&r[1]).trim().to_owned(),
                owner: r[2].text().map(str::to_owned),
                score: match &r[3] {
                    Val::Real(x) => Some(*x),
                    Val::Int(i) => Some(*i as f64),
                    _ => None,
                },
                band: r[4].text().map(str::to_owned),
                created_at: Timestamp::from_micros(r[5].int().unwrap_or(0)).to_string(),
            })
            .collect()
        };
        Ok(Overview {
            by_band,
            by_owner_band,
            ratings_by_owner,
            mqls_per_week,
            untouched_hot,
        })
    }
}
