//! Writing scores: JSON lines, CSV or an aligned table for a terminal.

use std::fmt::Write as _;
use std::io::Write;

use anyhow::Result;
use leadscore_core::{RuleKind, Score, ScoringModel};
use rayon::prelude::*;

use crate::batch::Scored;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_people_write_them() {
        for (x, text) in [
            (0.0, "0"),
            (-0.0, "0"),
            (15.0, "15"),
            (3.75, "3.75"),
            (3.5, "3.5"),
            (0.05, "0.05"),
            (-0.05, "-0.05"),
            (-3.0, "-3"),
            (45.75, "45.75"),
            (1234567.89, "1234567.89"),
            (0.1 + 0.2, "0.30000000000000004"),
        ] {
            let mut s = String::new();
            push_num(&mut s, x);
            assert_eq!(s, text, "{x}");
            if x == leadscore_core::round2(x) {
                assert_eq!(num(x), text, "num and push_num agree on {x}");
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
    Table,
}

/// A number as people write it: `15`, `3.75`, `-3` (never `-0`).
pub fn num(x: f64) -> String {
    if x == 0.0 { "0".to_owned() } else { format!("{x}") }
}

fn json_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).expect("strings serialize"));
    }
}

/// Appends a number as [`num`] spells it, without allocating. Scores are
/// already rounded to cents, so they are written from whole cents.
fn push_num(out: &mut String, x: f64) {
    let cents = (x * 100.0).round();
    if cents.abs() >= 1e15 || cents / 100.0 != x {
        out.push_str(&num(x));
        return;
    }
    let cents = cents as i64;
    if cents < 0 {
        out.push('-');
    }
    let (int, frac) = (cents.unsigned_abs() / 100, cents.unsigned_abs() % 100);
    out.push_str(itoa::Buffer::new().format(int));
    if frac != 0 {
        out.push('.');
        out.push(char::from(b'0' + (frac / 10) as u8));
        if frac % 10 != 0 {
            out.push(char::from(b'0' + (frac % 10) as u8));
        }
    }
}

/// The parts of a JSON line that depend on the model alone, spelled once
/// rather than for every row.
struct JsonlParts {
    /// `,"band":"<name>"` for each band.
    bands: Vec<String>,
    /// `{"rule":"<id>","kind":"fit","points":` for each fit rule.
    fit: Vec<String>,
    /// The same for each behavior rule.
    behavior: Vec<String>,
}

impl JsonlParts {
    fn new(model: &ScoringModel) -> Self {
        let rule = |id: &str, kind: RuleKind| {
            let mut s = String::from("{\"rule\":");
            json_str(&mut s, id);
            s.push_str(",\"kind\":\"");
            s.push_str(kind.as_str());
            s.push_str("\",\"points\":");
            s
        };
        JsonlParts {
            bands: model
                .bands
                .iter()
                .map(|b| {
                    let mut s = String::from(",\"band\":");
                    json_str(&mut s, &b.name);
                    s
                })
                .collect(),
            fit: model.fit.iter().map(|r| rule(&r.id, RuleKind::Fit)).collect(),
            behavior: model
                .behavior
                .iter()
                .map(|r| rule(&r.id, RuleKind::Behavior))
                .collect(),
        }
    }

    /// A little over the length of the row [`jsonl_row`] writes.
    fn row_size(&self, lead: &str, s: &Score) -> usize {
        // The fixed text, the numbers, band, grade and mql take under 120
        // bytes; an entry adds its spelled-out start, a number and a count.
        let entries: usize = s
            .breakdown
            .iter()
            .map(|c| match c.kind {
                RuleKind::Fit => self.fit[c.index].len(),
                RuleKind::Behavior => self.behavior[c.index].len(),
            })
            .sum();
        120 + lead.len() + self.bands[s.band].len() + entries + 32 * s.breakdown.len()
    }
}

fn jsonl_row(out: &mut String, parts: &JsonlParts, lead: &str, s: &Score) {
    out.push_str("{\"lead\":");
    json_str(out, lead);
    out.push_str(",\"score\":");
    push_num(out, s.score);
    out.push_str(",\"fit\":");
    push_num(out, s.fit);
    out.push_str(",\"engagement\":");
    push_num(out, s.engagement);
    out.push_str(&parts.bands[s.band]);
    out.push_str(",\"grade\":\"");
    out.push_str(s.grade.as_str());
    out.push_str(if s.mql {
        "\",\"mql\":true,\"breakdown\":["
    } else {
        "\",\"mql\":false,\"breakdown\":["
    });
    for (i, c) in s.breakdown.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(match c.kind {
            RuleKind::Fit => &parts.fit[c.index],
            RuleKind::Behavior => &parts.behavior[c.index],
        });
        push_num(out, c.points);
        if let Some(n) = c.events {
            out.push_str(",\"events\":");
            out.push_str(itoa::Buffer::new().format(n));
        }
        out.push('}');
    }
    out.push_str("]}\n");
}

/// Each rule's label (see `ScoringModel::rule_label`), spelled once.
struct Labels {
    fit: Vec<String>,
    behavior: Vec<String>,
}

impl Labels {
    fn new(model: &ScoringModel) -> Self {
        let label = |kind, index| model.rule_label(kind, index).into_owned();
        Labels {
            fit: (0..model.fit.len()).map(|i| label(RuleKind::Fit, i)).collect(),
            behavior: (0..model.behavior.len())
                .map(|i| label(RuleKind::Behavior, i))
                .collect(),
        }
    }
}

/// Appends the top contributions in words (the CSV's `reasons`, the
/// table's `why`): `Demo or trial +15; C-level +10; Email clicks ×2 +3.75`.
fn push_reasons(out: &mut String, labels: &Labels, s: &Score) {
    for (i, c) in s.breakdown.iter().take(3).enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(match c.kind {
            RuleKind::Fit => &labels.fit[c.index],
            RuleKind::Behavior => &labels.behavior[c.index],
        });
        if let (RuleKind::Behavior, Some(n)) = (c.kind, c.events)
            && n > 1
        {
            out.push_str(" ×");
            out.push_str(itoa::Buffer::new().format(n));
        }
        out.push(' ');
        if c.points > 0.0 {
            out.push('+');
        }
        push_num(out, c.points);
    }
    let more = s.breakdown.len().saturating_sub(3);
    if more > 0 {
        let _ = write!(out, "; {more} more");
    }
}

pub fn write(model: &ScoringModel, scored: &Scored, format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Jsonl => {
            let parts = JsonlParts::new(model);
            write_in_parallel(scored, out, |chunk, ids| {
                // Sized for the rows, so that the buffer is not copied as it
                // grows (and not much more).
                let size: usize = chunk
                    .iter()
                    .zip(ids)
                    .map(|((_, s), id)| parts.row_size(id, s))
                    .sum();
                let mut buf = String::with_capacity(size);
                for ((_, s), id) in chunk.iter().zip(ids) {
                    jsonl_row(&mut buf, &parts, id, s);
                }
                debug_assert!(buf.len() <= size, "row_size is a bound: {} > {size}", buf.len());
                Ok(buf.into_bytes())
            })?;
        }
        Format::Csv => {
            let mut header = csv::Writer::from_writer(&mut *out);
            header.write_record([
                "lead",
                "score",
                "fit",
                "engagement",
                "band",
                "grade",
                "mql",
                "reasons",
            ])?;
            header.flush()?;
            drop(header);
            // Each chunk is its own CSV writer's output (same quoting), without a header.
            let labels = Labels::new(model);
            write_in_parallel(scored, out, |chunk, ids| {
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(Vec::with_capacity(chunk.len() * 112));
                let mut cells: [String; 4] = Default::default();
                for ((_, s), id) in chunk.iter().zip(ids) {
                    cells.iter_mut().for_each(String::clear);
                    push_num(&mut cells[0], s.score);
                    push_num(&mut cells[1], s.fit);
                    push_num(&mut cells[2], s.engagement);
                    push_reasons(&mut cells[3], &labels, s);
                    w.write_record([
                        *id,
                        &cells[0],
                        &cells[1],
                        &cells[2],
                        s.band_name(model),
                        s.grade.as_str(),
                        if s.mql { "true" } else { "false" },
                        &cells[3],
                    ])?;
                }
                Ok(w.into_inner().map_err(|e| e.into_error())?)
            })?;
        }
        Format::Table => write_table(model, scored, out)?,
    }
    out.flush()?;
    Ok(())
}

/// Writes the ranked rows, formatted in parallel by `format` (a chunk of rows
/// and their ids -> its bytes) a group at a time and written in order, so the
/// whole output never sits in memory at once. A group is written while the
/// next one is formatted.
fn write_in_parallel<F>(scored: &Scored, out: &mut dyn Write, format: F) -> Result<()>
where
    F: Fn(&[(u32, Score)], &[&str]) -> Result<Vec<u8>> + Sync,
{
    let format_group = |group: &[(u32, Score)]| -> Result<Vec<Vec<u8>>> {
        group
            .par_chunks(2048)
            .map(|chunk| {
                // The ids are scattered in memory (rows come in rank order):
                // fetch them in one tight loop first, so the cache misses
                // overlap instead of one per row.
                let ids: Vec<&str> = chunk.iter().map(|(i, _)| scored.ids.get(*i)).collect();
                format(chunk, &ids)
            })
            .collect()
    };
    let mut formatted: Option<Vec<Vec<u8>>> = None;
    for group in scored.ranked.chunks(32 * 1024) {
        let mut next = None;
        let written = rayon::in_place_scope(|s| {
            s.spawn(|_| next = Some(format_group(group)));
            formatted
                .take()
                .into_iter()
                .flatten()
                .try_for_each(|part| out.write_all(&part))
        });
        written?;
        formatted = Some(next.expect("the group was formatted")?);
    }
    for part in formatted.into_iter().flatten() {
        out.write_all(&part)?;
    }
    Ok(())
}

fn write_table(model: &ScoringModel, scored: &Scored, out: &mut dyn Write) -> Result<()> {
    let header = [
        "#",
        "lead",
        "score",
        "band",
        "grade",
        "mql",
        "fit",
        "engagement",
        "why",
    ];
    let labels = Labels::new(model);
    let rows: Vec<[String; 9]> = scored
        .ranked
        .iter()
        .enumerate()
        .map(|(rank, (i, s))| {
            [
                (rank + 1).to_string(),
                scored.ids.get(*i).to_owned(),
                format!("{:.2}", s.score),
                s.band_name(model).to_owned(),
                s.grade.to_string(),
                if s.mql { "MQL" } else { "" }.to_owned(),
                format!("{:.2}", s.fit),
                format!("{:.2}", s.engagement),
                {
                    let mut why = String::new();
                    push_reasons(&mut why, &labels, s);
                    why
                },
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let numeric = [true, false, true, false, false, false, true, true, false];
    let line = |cells: &[String]| -> String {
        let mut l = String::new();
        for (k, cell) in cells.iter().enumerate() {
            let pad = widths[k] - cell.chars().count();
            if k > 0 {
                l.push_str("  ");
            }
            if numeric[k] {
                l.push_str(&" ".repeat(pad));
                l.push_str(cell);
            } else if k + 1 < cells.len() {
                l.push_str(cell);
                l.push_str(&" ".repeat(pad));
            } else {
                l.push_str(cell);
            }
        }
        l.trim_end().to_owned() + "\n"
    };
    out.write_all(line(&header.map(str::to_owned)).as_bytes())?;
    for row in &rows {
        out.write_all(line(row).as_bytes())?;
    }
    Ok(())
}
