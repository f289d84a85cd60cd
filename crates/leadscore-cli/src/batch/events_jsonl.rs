//! EVENTS.jsonl -> the hits each lead's behavior rules count.
//!
//! The file is read in large chunks by one thread while the others parse the
//! previous chunk line by line in parallel. Only events that some behavior
//! rule counts are kept, as 24-byte hits; every line is still checked, so a
//! bad row is reported wherever it is. Memory stays bounded by the kept hits
//! and the duplicate filter, not by the file size.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use anyhow::{Context, Result};
use leadscore_core::{ScoringModel, Timestamp};
use rayon::prelude::*;

use super::bad_rows::{BadKind, BadRow, BadRows};
use super::dedup::{Dedup, id_hash};
use super::json_line::{LineError, parse_line};
use super::lead_ids::LeadIds;
use super::leads_csv::reject;

/// One event counted by one rule for one lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeadHit {
    pub lead: u32,
    pub rule: u16,
    pub at: Timestamp,
    /// The line number: the ingest order.
    pub seq: u64,
}

const CHUNK: usize = 8 << 20;

/// What one parallel piece of a chunk produced, in line order.
#[derive(Default)]
struct Piece {
    hits: Vec<LeadHit>,
    ids: Vec<u64>,
    bad: Vec<BadRow>,
}

/// Reads all events, returning the hits that count (duplicates removed) and
/// the number of duplicate events ignored.
pub fn read_events<R: Read + Send + 'static>(
    model: &ScoringModel,
    leads: &LeadIds,
    input: R,
    file: &str,
    size_hint: Option<u64>,
    bad: &mut BadRows,
    strict: bool,
) -> Result<(Vec<LeadHit>, u64)> {
    let (tx, rx) = sync_channel::<std::io::Result<Vec<u8>>>(2);
    let (recycle, recycled) = sync_channel::<Vec<u8>>(4);
    let reader = std::thread::spawn(move || read_chunks(input, &tx, &recycled));

    let mut hits = Vec::new();
    let mut dedup = Dedup::default();
    let mut first_line = 1u64;
    for chunk in rx {
        let chunk = chunk.with_context(|| format!("{file}: cannot read"))?;
        if dedup.is_empty()
            && let Some(size) = size_hint
        {
            // Estimate the file's event count from the first chunk's line density.
            let per_line = (chunk.len() as u64 / count_lines(&chunk).max(1)).max(1);
            dedup.reserve(size / per_line + 1);
        }
        let pieces = split_lines(&chunk, rayon::current_num_threads() * 4);
        let mut starts = Vec::with_capacity(pieces.len());
        let mut line = first_line;
        for p in &pieces {
            starts.push(line);
            line += count_lines(p);
        }
        first_line = line;
        let results: Vec<Piece> = pieces
            .par_iter()
            .zip(starts)
            .map(|(piece, start)| parse_piece(model, leads, piece, start, file))
            .collect();
        for piece in &results {
            for row in &piece.bad {
                reject(bad, strict, row.clone())?;
            }
        }
        for piece in &results {
            dedup.extend(&piece.ids);
        }
        for piece in results {
            hits.extend_from_slice(&piece.hits);
        }
        let _ = recycle.try_send(chunk);
    }
    reader.join().expect("the reader thread does not panic")?;

    let duplicates = dedup.duplicate_lines(|hashes| ids_with_hashes(model, leads, file, hashes))?;
    if !duplicates.is_empty() {
        hits.retain(|h| duplicates.binary_search(&h.seq).is_err());
    }
    Ok((hits, duplicates.len() as u64))
}

/// Reads `input` in chunks of about [`CHUNK`] bytes that end at a line end.
/// Buffers come back through `recycled`, so the same few are reused and
/// the kernel does not have to hand out fresh pages for every chunk.
fn read_chunks<R: Read>(
    mut input: R,
    tx: &SyncSender<std::io::Result<Vec<u8>>>,
    recycled: &Receiver<Vec<u8>>,
) -> Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let mut buf = recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK + (CHUNK >> 3)));
        buf.clear();
        buf.extend_from_slice(&carry);
        carry.clear();
        let want = CHUNK as u64;
        let got = match input.by_ref().take(want).read_to_end(&mut buf) {
            Ok(n) => n as u64,
            Err(e) => {
                let _ = tx.send(Err(e));
                return Ok(());
            }
        };
        let eof = got < want;
        if !eof && let Some(nl) = memchr::memrchr(b'\n', &buf) {
            carry.extend_from_slice(&buf[nl + 1..]);
            buf.truncate(nl + 1);
        }
        if !buf.is_empty() && tx.send(Ok(buf)).is_err() {
            return Ok(()); // the consumer stopped (e.g. --strict)
        }
        if eof {
            return Ok(());
        }
    }
}

fn count_lines(b: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', b).count() as u64
}

/// Splits at line ends into about `n` pieces.
fn split_lines(chunk: &[u8], n: usize) -> Vec<&[u8]> {
    let target = chunk.len() / n.max(1) + 1;
    let mut pieces = Vec::with_capacity(n + 1);
    let mut rest = chunk;
    while !rest.is_empty() {
        let cut = if rest.len() <= target {
            rest.len()
        } else {
            memchr::memchr(b'\n', &rest[target..]).map_or(rest.len(), |i| target + i + 1)
        };
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    pieces
}

fn parse_piece(model: &ScoringModel, leads: &LeadIds, piece: &[u8], first_line: u64, file: &str) -> Piece {
    let mut out = Piece::default();
    let mut batch: Vec<(u64, Parsed)> = Vec::with_capacity(LOOKUP_BATCH);
    let mut start = 0;
    let mut line_no = first_line - 1;
    while start < piece.len() {
        let end = memchr::memchr(b'\n', &piece[start..]).map_or(piece.len(), |i| start + i);
        let line = &piece[start..end];
        start = end + 1;
        line_no += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_event(model, line) {
            Ok(parsed) => batch.push((line_no, parsed)),
            Err((kind, detail)) => out.bad.push(BadRow {
                file: file.into(),
                line: line_no,
                kind,
                detail,
            }),
        }
        if batch.len() == LOOKUP_BATCH {
            resolve_leads(leads, &mut batch, &mut out, file);
        }
    }
    resolve_leads(leads, &mut batch, &mut out, file);
    out.bad.sort_by_key(|b| b.line);
    out
}

/// Lines are parsed first and their leads looked up afterwards in a tight
/// loop, so the CPU overlaps the cache misses of many lookups.
const LOOKUP_BATCH: usize = 64;

fn resolve_leads(leads: &LeadIds, batch: &mut Vec<(u64, Parsed)>, out: &mut Piece, file: &str) {
    let found: Vec<Option<u32>> = batch.iter().map(|(_, p)| leads.find(&p.lead)).collect();
    for ((line_no, p), lead) in batch.drain(..).zip(found) {
        match lead {
            Some(lead) => {
                out.ids.push(p.hash);
                out.hits.extend(p.rules.into_iter().map(|rule| LeadHit {
                    lead,
                    rule,
                    at: p.at,
                    seq: line_no,
                }));
            }
            None => out.bad.push(BadRow {
                file: file.into(),
                line: line_no,
                kind: BadKind::UnknownLead,
                detail: unknown_lead(&p.lead),
            }),
        }
    }
}

fn unknown_lead(id: &str) -> String {
    format!("no lead with id `{id}` in the leads file")
}

/// A valid event line, before its lead is looked up.
struct Parsed<'a> {
    hash: u64,
    lead: std::borrow::Cow<'a, str>,
    at: Timestamp,
    rules: smallrules::Rules,
}

/// Validates one line and finds the rules it counts for.
fn parse_event<'a>(model: &ScoringModel, line: &'a [u8]) -> Result<Parsed<'a>, (BadKind, String)> {
    let ev = parse_line(line).map_err(|e| match e {
        LineError::NotJson(m) => (BadKind::NotJson, m),
        LineError::MissingField(f) => (BadKind::MissingField, format!("the event has no `{f}`")),
        LineError::WrongType(m) => (BadKind::WrongType, m),
        LineError::UnknownField(m) => (
            BadKind::UnknownField,
            format!("{m} (an event has id, lead, type, occurred_at, properties)"),
        ),
    })?;
    for (name, v) in [("id", &ev.id), ("lead", &ev.lead), ("type", &ev.kind)] {
        if v.trim().is_empty() {
            return Err((BadKind::MissingField, format!("the event's `{name}` is blank")));
        }
    }
    let at = Timestamp::parse(&ev.occurred_at)
        .map_err(|e| (BadKind::BadTimestamp, format!("occurred_at: {e}")))?;
    let mut rules = smallrules::Rules::default();
    for &r in model.rules_listing(&ev.kind) {
        if model.behavior[usize::from(r)].matches_properties(&ev) {
            rules.push(r);
        }
    }
    Ok(Parsed {
        hash: id_hash(&ev.id),
        lead: ev.lead,
        at,
        rules,
    })
}

/// A whole check of one line, lead included: the id hash of a valid event.
fn check_line(model: &ScoringModel, leads: &LeadIds, line: &[u8]) -> Option<u64> {
    let p = parse_event(model, line).ok()?;
    leads.find(&p.lead).map(|_| p.hash)
}

/// Every valid event line whose id hashes to one of `hashes`, with its id,
/// read again from the file. Only needed when some id hash was seen twice.
fn ids_with_hashes(
    model: &ScoringModel,
    leads: &LeadIds,
    file: &str,
    hashes: &HashSet<u64>,
) -> Result<Vec<(u64, String)>> {
    let input = std::fs::File::open(file)
        .with_context(|| format!("{file}: cannot open again to check duplicates"))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(input).split(b'\n').enumerate() {
        let line = line.with_context(|| format!("{file}: cannot read again to check duplicates"))?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if let Some(hash) = check_line(model, leads, line)
            && hashes.contains(&hash)
            && let Ok(ev) = parse_line(line)
        {
            out.push((i as u64 + 1, ev.id.into_owned()));
        }
    }
    Ok(out)
}

mod smallrules {
    /// The rules one event counts for: almost always zero or one, so inline.
    #[derive(Default)]
    pub struct Rules {
        inline: [u16; 4],
        len: usize,
        more: Vec<u16>,
    }

    impl Rules {
        pub fn push(&mut self, r: u16) {
            if self.len < self.inline.len() {
                self.inline[self.len] = r;
                self.len += 1;
            } else {
                self.more.push(r);
            }
        }
    }

    impl IntoIterator for Rules {
        type Item = u16;
        type IntoIter =
            std::iter::Chain<std::iter::Take<std::array::IntoIter<u16, 4>>, std::vec::IntoIter<u16>>;

        fn into_iter(self) -> Self::IntoIter {
            self.inline.into_iter().take(self.len).chain(self.more)
        }
    }
}
