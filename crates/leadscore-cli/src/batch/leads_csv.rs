//! LEADS.csv -> the leads' ids and fit outcomes.
//!
//! Rows are read in order (so repeated ids and line numbers are exact), in
//! batches of reused records, and evaluated against the fit rules on the
//! reading thread itself, while the events are parsed on the other cores.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use anyhow::{Context, Result, bail};
use leadscore_core::{FitOutcome, LeadData, ScoringModel, StdField};

use super::bad_rows::{BadKind, BadRow, BadRows};
use super::lead_ids::LeadIds;

/// The leads of one file: ids in file order and their fit outcomes.
#[derive(Debug, Default)]
pub struct LeadTable {
    pub ids: LeadIds,
    pub fits: Vec<FitOutcome>,
}

/// Which CSV column holds each standard field and custom attribute.
#[derive(Debug, Default)]
struct Columns {
    std: [Option<usize>; StdField::ALL.len()],
    custom: HashMap<String, usize>,
}

/// One CSV row seen as a lead, without copying its fields.
struct Row<'a> {
    rec: &'a csv::StringRecord,
    cols: &'a Columns,
}

impl<'a> Row<'a> {
    /// The lead's id, trimmed ("" when blank).
    fn id(&self) -> &'a str {
        self.cols.std[StdField::Id as usize]
            .and_then(|i| self.rec.get(i))
            .unwrap_or("")
            .trim()
    }
}

impl LeadData for Row<'_> {
    fn get(&self, field: StdField) -> Option<&str> {
        let v = self.rec.get(self.cols.std[field as usize]?)?;
        (!v.trim().is_empty()).then_some(v)
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        let v = self.rec.get(*self.cols.custom.get(name)?)?;
        (!v.trim().is_empty()).then_some(v)
    }
}

const BATCH: usize = 8192;

/// Reads the leads; `size_hint` (the file's length, when known) lets the
/// tables be sized once for all the rows.
pub fn read_leads(
    model: &ScoringModel,
    input: impl Read,
    size_hint: Option<u64>,
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
    let cols = columns(&header, file)?;

    let mut table = LeadTable::default();
    // Records are read into a reused batch (no allocation per row), then
    // evaluated, then their ids indexed in file order.
    let mut batch: Vec<csv::StringRecord> = (0..BATCH).map(|_| csv::StringRecord::new()).collect();
    let mut lines = vec![0u64; BATCH];
    let mut eof = false;
    // Rows refused while reading wait here, so that every bad row of a batch
    // is reported in file order (and `--strict` stops at the first one).
    let mut early: Vec<BadRow> = Vec::new();
    let mut first = true;
    while !eof {
        let mut n = 0;
        while n < BATCH {
            match rdr.read_record(&mut batch[n]) {
                Ok(false) => {
                    eof = true;
                    break;
                }
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    let row = match e.kind() {
                        csv::ErrorKind::Utf8 { err, .. } => {
                            let detail = format!("field {} is not valid UTF-8", err.field() + 1);
                            BadRow::new(file, line, BadKind::NotUtf8, detail)
                        }
                        _ => return Err(e).with_context(|| format!("{file}: cannot read")),
                    };
                    early.push(row);
                    continue;
                }
            }
            let rec = &batch[n];
            let line = rec.position().map_or(0, |p| p.line());
            if rec.len() != header.len() {
                let detail = format!(
                    "expected {} fields as in the header, found {}",
                    header.len(),
                    rec.len()
                );
                early.push(BadRow::new(file, line, BadKind::WrongFieldCount, detail));
                continue;
            }
            lines[n] = line;
            n += 1;
        }
        if first {
            if let Some(size) = size_hint
                && n > 0
            {
                // Estimated from the first batch's bytes per row (a little over).
                let bytes = rdr.position().byte().max(1);
                let rows = (size.saturating_mul(n as u64) / bytes) as usize + n;
                let id_bytes: usize = batch[..n]
                    .iter()
                    .map(|rec| Row { rec, cols: &cols }.id().len())
                    .sum();
                table.ids.reserve(rows, id_bytes / n + 1);
                table.fits.reserve(rows);
            }
            // The checks' data (phone metadata above all) is loading on a
            // warm-up thread. Wait for it here rather than in the shared
            // pool, where the waiting would stall the events' parsing too.
            leadscore_core::checks::warm_up(model.checks_phones());
            first = false;
        }
        // Evaluated here, not in the shared pool: there the batch would
        // queue behind the events' pieces and hold this thread up, and every
        // event parsed before the leads are in must wait, in memory, to be
        // matched (see `events_jsonl`). On its own thread the work gets its
        // fair share of the cores and the leads are in sooner.
        let fits: Vec<Option<FitOutcome>> = batch[..n]
            .iter()
            .map(|rec| {
                let row = Row { rec, cols: &cols };
                row.get(StdField::Id).is_some().then(|| model.evaluate_fit(&row))
            })
            .collect();
        let mut early_rows = std::mem::take(&mut early).into_iter().peekable();
        for ((rec, fit), &line) in batch[..n].iter().zip(fits).zip(&lines) {
            while let Some(row) = early_rows.next_if(|r| r.line < line) {
                reject(bad, strict, row)?;
            }
            let Some(fit) = fit else {
                let detail = "the id is blank".to_owned();
                reject(
                    bad,
                    strict,
                    BadRow::new(file, line, BadKind::MissingLeadId, detail),
                )?;
                continue;
            };
            let id = Row { rec, cols: &cols }.id();
            if !table.ids.insert(id) {
                let detail = "this id was already given on an earlier row".to_owned();
                reject(
                    bad,
                    strict,
                    BadRow::new(file, line, BadKind::RepeatedLeadId, detail),
                )?;
                continue;
            }
            table.fits.push(fit);
        }
        for row in early_rows {
            reject(bad, strict, row)?;
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

fn columns(header: &csv::ByteRecord, file: &str) -> Result<Columns> {
    let mut cols = Columns::default();
    let mut seen = HashSet::new();
    for (i, raw) in header.iter().enumerate() {
        let name = std::str::from_utf8(raw)
            .with_context(|| format!("{file}: header column {} is not UTF-8", i + 1))?;
        let name = name.trim_start_matches('\u{feff}').trim();
        if !seen.insert(name.to_ascii_lowercase()) {
            bail!("{file}: the header names column `{name}` twice");
        }
        match StdField::from_name(name) {
            Some(f) => cols.std[f as usize] = Some(i),
            None => {
                cols.custom.insert(name.to_owned(), i);
            }
        }
    }
    if cols.std[StdField::Id as usize].is_none() {
        bail!("{file}: the header has no `id` column (every lead needs its id)");
    }
    Ok(cols)
}
