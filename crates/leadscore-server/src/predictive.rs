//! The predictive model inside the service: trained from the deployment's
//! own outcomes (leads that converted or were lost), then a probability and
//! its top factors on every lead, beside the rule score.
//!
//! A lead becomes one row of features: its descriptive fields and custom
//! attributes (not its name, e-mail, phone or company, which identify rather
//! than describe), the kind of its e-mail and phone, and per event type how
//! many events it had and how many days since the last one, as of the moment
//! it is scored (for training: just before its outcome was known).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use leadscore_core::checks::{classify_email, classify_phone};
use leadscore_core::{Event, Lead, StdField, Timestamp};
use leadscore_ml::gbdt::{Model, Params};
use leadscore_ml::{Dataset, Table};
use leadscore_store::{Store, StoreError};
use serde::Serialize;

/// The fields that describe a lead (the standard columns after the company:
/// not its id, name, e-mail, phone or company, which identify it; nor
/// `is_customer`, which a won lead becomes: it would hand the model its answer).
fn descriptive() -> impl Iterator<Item = StdField> {
    StdField::ALL
        .into_iter()
        .skip_while(|f| *f != StdField::JobTitle)
        .filter(|f| *f != StdField::IsCustomer)
}

/// Fewer outcomes (or conversions) than these, and no model is trained.
pub const MIN_LEADS: usize = 200;
pub const MIN_CONVERSIONS: usize = 30;

/// A lead's features as (column, cell) pairs, as of `as_of`.
pub fn features(lead: &Lead, events: &[Event], as_of: Timestamp) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    for field in descriptive() {
        if let Some(v) = lead.get(field) {
            f.insert(field.name().to_owned(), v.to_owned());
        }
    }
    for (k, v) in lead.attributes() {
        f.insert(format!("attribute:{k}"), v.to_owned());
    }
    if let Some(e) = lead.get(StdField::Email) {
        f.insert("email_kind".into(), classify_email(e).as_str().to_owned());
    }
    if let Some(p) = lead.get(StdField::Phone) {
        let kind = classify_phone(p, lead.get(StdField::Country));
        f.insert("phone_valid".into(), kind.is_valid().to_string());
    }
    let mut per_type: BTreeMap<&str, (u32, Timestamp)> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for e in events.iter().filter(|e| e.occurred_at <= as_of) {
        if !seen.insert(e.id.as_str()) {
            continue;
        }
        let entry = per_type.entry(e.kind.as_str()).or_insert((0, e.occurred_at));
        entry.0 += 1;
        entry.1 = entry.1.max(e.occurred_at);
    }
    for (kind, (count, last)) in per_type {
        f.insert(format!("events:{kind}"), count.to_string());
        f.insert(
            format!("days_since:{kind}"),
            format!("{:.2}", as_of.days_since(last)),
        );
    }
    f
}

/// A feature's cell in a row: event counts are 0, not blank, for a lead
/// without such events; anything else missing is blank.
fn cell(row: &BTreeMap<String, String>, name: &str) -> String {
    row.get(name).cloned().unwrap_or_else(|| {
        if name.starts_with("events:") {
            "0".into()
        } else {
            String::new()
        }
    })
}

/// Rows of features as a table (a column for every feature any row has).
/// Event counts are 0, not blank, for a lead without such events.
pub fn table(rows: &[BTreeMap<String, String>], target: Option<&[bool]>) -> Table {
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for r in rows {
        names.extend(r.keys().map(String::as_str));
    }
    let mut names: Vec<String> = names.into_iter().map(str::to_owned).collect();
    let mut out: Vec<Vec<String>> = rows
        .iter()
        .map(|r| names.iter().map(|n| cell(r, n)).collect())
        .collect();
    if let Some(t) = target {
        names.push("__outcome".into());
        for (row, &won) in out.iter_mut().zip(t) {
            row.push(if won { "1" } else { "0" }.into());
        }
    }
    Table { names, rows: out }
}

/// What training did.
#[derive(Debug, Clone, Serialize)]
pub struct Trained {
    pub name: String,
    pub leads: usize,
    pub conversions: usize,
    pub columns: usize,
    pub auc: f64,
    pub logloss: f64,
    pub brier: f64,
    pub top10_conversion: f64,
    pub base_rate: f64,
    pub baseline_auc: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(
        "{leads} leads with a known outcome ({conversions} conversions) are too few to learn from: at least \
         {MIN_LEADS} leads and {MIN_CONVERSIONS} conversions are needed; the rule model stays in charge"
    )]
    TooFew { leads: usize, conversions: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Data(String),
}

/// Trains from every lead with a known outcome, cross-validates, stores the
/// model and makes it active.
pub async fn retrain(store: &Arc<dyn Store>, now: Timestamp) -> Result<Trained, TrainError> {
    let cases = crate::reports::cases(store).await?;
    let conversions = cases.iter().filter(|c| c.won).count();
    if cases.len() < MIN_LEADS || conversions < MIN_CONVERSIONS {
        return Err(TrainError::TooFew {
            leads: cases.len(),
            conversions,
        });
    }
    let (model, trained) = tokio::task::spawn_blocking(move || -> Result<(Model, Trained), TrainError> {
        let rows: Vec<BTreeMap<String, String>> = cases
            .iter()
            .map(|c| {
                features(
                    &c.lead,
                    &c.events,
                    Timestamp::from_micros(c.decided_at.as_micros() - 1),
                )
            })
            .collect();
        let target: Vec<bool> = cases.iter().map(|c| c.won).collect();
        let data = Dataset::from_table(&table(&rows, Some(&target)), "__outcome", &[])
            .map_err(|e| TrainError::Data(e.to_string()))?;
        let params = Params::default();
        let ev = leadscore_ml::cv::evaluate(&data, 5, 42, &params);
        let all: Vec<usize> = (0..data.rows()).collect();
        let bins = leadscore_ml::binning::fit(&data, &all);
        let x = leadscore_ml::binning::apply(&data, &bins);
        let model = leadscore_ml::gbdt::train(bins, &x, &data.target, &all, &params);
        let trained = Trained {
            name: format!("predictive-{}", now.to_string().replace([':', '.'], "-")),
            leads: data.rows(),
            conversions,
            columns: data.columns.len(),
            auc: ev.gbdt.auc,
            logloss: ev.gbdt.logloss,
            brier: ev.gbdt.brier,
            top10_conversion: ev.gbdt.top10_conversion,
            base_rate: ev.gbdt.base_rate,
            baseline_auc: ev.logistic.auc,
        };
        Ok((model, trained))
    })
    .await
    .map_err(|e| TrainError::Data(format!("training stopped: {e}")))??;
    let body = serde_json::to_string(&model).expect("a model serialises");
    let metrics = serde_json::to_string(&trained).expect("figures serialise");
    store.put_predictive(&trained.name, &body, &metrics, now).await?;
    Ok(trained)
}

/// The active predictive model, parsed once per name.
#[derive(Debug, Default)]
pub struct Cache(Mutex<Option<(String, Arc<Model>)>>);

impl Cache {
    pub async fn active(&self, store: &Arc<dyn Store>) -> Result<Option<(String, Arc<Model>)>, StoreError> {
        let Some((name, body, _)) = store.active_predictive().await? else {
            return Ok(None);
        };
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((n, m)) = guard.as_ref()
            && *n == name
        {
            return Ok(Some((name, m.clone())));
        }
        let model: Model = serde_json::from_str(&body)
            .map_err(|e| StoreError::Corrupt(format!("predictive model `{name}`: {e}")))?;
        let model = Arc::new(model);
        *guard = Some((name.clone(), model.clone()));
        Ok(Some((name, model)))
    }
}

/// A lead's probability, its 0..100 score and its top factors (by the size
/// of their contribution to the log-odds; they add up with the base to it).
pub fn explain(model: &Model, lead: &Lead, events: &[Event], now: Timestamp) -> serde_json::Value {
    let row = features(lead, events, now);
    // Every column the model knows, as in training (no such event: a count of 0).
    let names: Vec<String> = model.bins.iter().map(|b| b.name().to_owned()).collect();
    let cells = names.iter().map(|n| cell(&row, n)).collect();
    let x = model.bin_table(&Table {
        names,
        rows: vec![cells],
    });
    let (bias, per) = model.contributions(&x, 0);
    let raw = bias + per.iter().sum::<f64>();
    let p = 1.0 / (1.0 + (-raw).exp());
    let mut factors: Vec<(usize, f64)> = per
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, c)| c.abs() > 1e-6)
        .collect();
    factors.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    let others: f64 = factors.iter().skip(5).map(|f| f.1).sum();
    factors.truncate(5);
    serde_json::json!({
        "probability": (p * 10_000.0).round() / 10_000.0,
        "predictive_score": (p * 100.0).round(),
        "factors": factors.iter().map(|&(i, c)| {
            let name = model.bins[i].name();
            serde_json::json!({"feature": name, "value": row.get(name), "contribution": (c * 1000.0).round() / 1000.0})
        }).collect::<Vec<_>>(),
        // base + the factors + others = the log-odds of the probability.
        "base": (bias * 1000.0).round() / 1000.0,
        "others": (others * 1000.0).round() / 1000.0,
    })
}
