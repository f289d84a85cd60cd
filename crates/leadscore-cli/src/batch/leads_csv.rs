//! LEADS.csv -> the leads' ids and fit outcomes.
//!
//! Rows are read in order (so repeated ids and line numbers are exact), then
//! turned into leads and evaluated against the fit rules in parallel batches.

use std::collections::HashMap;
use std::io::Read;

use anyhow::{Context, Result, bail};
use leadscore_core::{FitOutcome, Lead, ScoringModel, StdField};
use rayon::prelude::*;

use super::bad_rows::{BadKind, BadRow, BadRows};

pub type IdMap = HashMap<Box<str>, u32, foldhash::fast::FixedState>;

/// The leads of one file: ids in file order, their index and fit outcomes.
#[derive(Debug, Default)]
pub struct LeadTable {
    pub ids: Vec<Box<str>>,
    pub index: IdMap,
    pub fits: Vec<FitOutcome>,
}

/// Where a column goes.
#[derive(Debug, Clone)]
enum Column {
    Std(StdField),
    Custom(String),
}

const BATCH: usize = 8192;

pub fn read_leads(
    model: &ScoringModel,
    input: impl Read,
    file: &str,
    bad: &mut BadRows,
    strict: bool,
) -> Result<LeadTable> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(input);
    let header = rdr
        .byte_headers()
        .with_context(|| format!("{file}: cannot read the header row"))?
        .clone();
    let columns = columns(&header, file)?;

    let mut table = LeadTable::default();
    let mut batch: Vec<(u64, csv::ByteRecord)> = Vec::with_capacity(BATCH);
    let mut record = csv::ByteRecord::new();
    loop {
        let more = rdr
            .read_byte_record(&mut record)
            .with_context(|| format!("{file}: cannot read"))?;
        if more {
            let line = record.position().map_or(0, |p| p.line());
            if record.len() != header.len() {
                let detail = format!(
                    "expected {} fields as in the header, found {}",
                    header.len(),
                    record.len()
                );
                reject(
                    bad,
                    strict,
                    BadRow {
                        file: file.into(),
                        line,
                        kind: BadKind::WrongFieldCount,
                        detail,
                    },
                )?;
                continue;
            }
            batch.push((line, record.clone()));
        }
        if batch.len() >= BATCH || (!more && !batch.is_empty()) {
            let leads: Vec<(u64, Result<Lead, BadRow>)> = batch
                .par_iter()
                .map(|(line, rec)| (*line, to_lead(rec, &columns, file, *line)))
                .collect();
            let evaluated: Vec<(u64, Result<(Box<str>, FitOutcome), BadRow>)> = leads
                .into_par_iter()
                .map(|(line, lead)| (line, lead.map(|l| (l.id().into(), model.evaluate_fit(&l)))))
                .collect();
            for (line, outcome) in evaluated {
                match outcome {
                    Err(row) => reject(bad, strict, row)?,
                    Ok((id, fit)) => {
                        if table.index.contains_key(&id) {
                            let detail = "this id was already given on an earlier row".to_owned();
                            reject(
                                bad,
                                strict,
                                BadRow {
                                    file: file.into(),
                                    line,
                                    kind: BadKind::RepeatedLeadId,
                                    detail,
                                },
                            )?;
                            continue;
                        }
                        table.index.insert(id.clone(), table.ids.len() as u32);
                        table.ids.push(id);
                        table.fits.push(fit);
                    }
                }
            }
            batch.clear();
        }
        if !more {
            break;
        }
    }
    Ok(table)
}

/// Records a bad row; under `--strict` the first one ends the run.
pub fn reject(bad: &mut BadRows, strict: bool, row: BadRow) -> Result<()> {
    if strict {
        bail!(StrictStop(row));
    }
    bad.push(row);
    Ok(())
}

/// The run stopped at a bad row under `--strict`.
#[derive(Debug, thiserror::Error)]
#[error("{0} (stopped: --strict)")]
pub struct StrictStop(pub BadRow);

fn columns(header: &csv::ByteRecord, file: &str) -> Result<Vec<Column>> {
    let mut cols = Vec::with_capacity(header.len());
    let mut seen = std::collections::HashSet::new();
    for (i, raw) in header.iter().enumerate() {
        let name = std::str::from_utf8(raw)
            .with_context(|| format!("{file}: header column {} is not UTF-8", i + 1))?;
        let name = name.trim_start_matches('\u{feff}').trim();
        if !seen.insert(name.to_ascii_lowercase()) {
            bail!("{file}: the header names column `{name}` twice");
        }
        cols.push(match StdField::from_name(name) {
            Some(f) => Column::Std(f),
            None => Column::Custom(name.to_owned()),
        });
    }
    if !cols.iter().any(|c| matches!(c, Column::Std(StdField::Id))) {
        bail!("{file}: the header has no `id` column (every lead needs its id)");
    }
    Ok(cols)
}

fn to_lead(rec: &csv::ByteRecord, columns: &[Column], file: &str, line: u64) -> Result<Lead, BadRow> {
    let mut lead = Lead::default();
    for (i, (raw, col)) in rec.iter().zip(columns).enumerate() {
        let value = std::str::from_utf8(raw).map_err(|_| BadRow {
            file: file.into(),
            line,
            kind: BadKind::NotUtf8,
            detail: format!("field {} is not valid UTF-8", i + 1),
        })?;
        match col {
            Column::Std(StdField::Id) => lead.set(StdField::Id, value.trim()),
            Column::Std(f) => lead.set(*f, value),
            Column::Custom(name) => lead.set_attribute(name.as_str(), value),
        }
    }
    if lead.id().is_empty() {
        return Err(BadRow {
            file: file.into(),
            line,
            kind: BadKind::MissingLeadId,
            detail: "the id is blank".into(),
        });
    }
    Ok(lead)
}
