//! EVENTS.jsonl -> the hits each lead's behavior rules count.
//!
//! The file is read in large chunks by one thread while the others parse the
//! previous chunk line by line in parallel. Lines are parsed before the leads
//! file has finished loading: each valid event keeps its lead as a hash key
//! and is matched to its lead (or reported as an unknown lead) once the leads
//! are in. Only events that some behavior rule counts are kept, as 24-byte
//! hits; every line is still checked, so a bad row is reported wherever it
//! is. Memory stays bounded by the kept hits and the duplicate filter, not by
//! the file size.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use anyhow::{Context, Result};
use leadscore_core::{PropertyLookup, ScoringModel, Timestamp};
use rayon::prelude::*;

use super::bad_rows::{BadKind, BadRow, BadRows};
use super::dedup::{Dedup, id_hash};
use super::json_line::{Canonical, LineError, parse_line, swar};
use super::lead_ids::{LeadIds, LeadKey};
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

/// The leads' ids, which may still be loading on another thread.
pub trait LeadsSource {
    /// The ids if they are loaded, without waiting.
    fn ready(&self) -> Option<&LeadIds>;
    /// Waits for the ids; `None` when loading them failed.
    fn wait(&self) -> Option<&LeadIds>;
}

const CHUNK: usize = 4 << 20;

/// Parsed events waiting for the leads to load take at most this much memory;
/// past it, parsing waits for the leads.
const PENDING_BUDGET: usize = 96 << 20;

/// One parallel piece of a chunk, parsed but not yet matched to leads.
#[derive(Default)]
struct Piece {
    /// The file-wide number of the piece's first line.
    first_line: u64,
    /// How many lines the piece holds.
    lines: u64,
    events: Vec<Parsed>,
    /// The rules each event counts for: `events[i]`'s are `rules[events[i-1].rules_end..events[i].rules_end]`.
    rules: Vec<u16>,
    bad: Vec<BadRow>,
}

impl Piece {
    fn memory(&self) -> usize {
        self.events.capacity() * std::mem::size_of::<Parsed>() + self.rules.capacity() * 2
    }
}

/// A valid event line, before its lead is looked up (40 bytes).
struct Parsed {
    lead: LeadKey,
    id_hash: u64,
    at: Timestamp,
    /// Line number minus the piece's first line.
    line_offset: u32,
    rules_end: u32,
}

/// A piece matched to the leads, in line order.
struct Resolved {
    /// How many lines the piece holds.
    lines: u64,
    hits: Vec<LeadHit>,
    ids: Vec<u64>,
    bad: Vec<BadRow>,
}

/// Reads all events, returning the hits that count (duplicates removed) and
/// the number of duplicate events ignored; `None` when the leads failed to load.
pub fn read_events<R: Read + Send + 'static>(
    model: &ScoringModel,
    leads: &dyn LeadsSource,
    input: R,
    file: &str,
    size_hint: Option<u64>,
    bad: &mut BadRows,
    strict: bool,
) -> Result<Option<(Hits, u64)>> {
    let (tx, rx) = sync_channel::<std::io::Result<Vec<u8>>>(2);
    let (recycle, recycled) = sync_channel::<Vec<u8>>(2);
    let reader = std::thread::spawn(move || read_chunks(input, &tx, &recycled));

    let mut out = Collected {
        hits: Vec::new(),
        per_lead: Vec::new(),
        dedup: Dedup::default(),
        next_line: 1,
    };
    let mut pending: Vec<Piece> = Vec::new();
    // Matched pieces of the previous chunk, collected while the next one parses.
    let mut waiting: Option<Vec<Resolved>> = None;
    let mut reserved = false;
    for chunk in rx {
        let chunk = chunk.with_context(|| format!("{file}: cannot read"))?;
        if !reserved && let Some(size) = size_hint {
            // Estimate the file's event count from the first chunk's line density.
            let per_line = (chunk.len() as u64 / count_lines(&chunk).max(1)).max(1);
            out.dedup.reserve(size / per_line + 1);
            reserved = true;
        }
        let pieces = split_lines(&chunk, rayon::current_num_threads() * 4);
        if pending.is_empty()
            && let Some(ids) = leads.ready()
        {
            // The usual case once the leads are in: parse and match in one
            // pass, while the previous chunk's pieces are collected (a serial
            // step: line numbers, bad rows, the duplicate filter), so that no
            // core waits on it.
            let previous = waiting.take();
            let (resolved, collected) = rayon::join(
                || {
                    pieces
                        .par_iter()
                        .map(|piece| resolve_piece(parse_piece(model, piece, file), ids, file))
                        .collect::<Vec<Resolved>>()
                },
                || previous.map_or(Ok(()), |r| out.collect(r, file, bad, strict)),
            );
            collected?;
            let _ = recycle.try_send(chunk);
            waiting = Some(resolved);
            continue;
        }
        if let Some(previous) = waiting.take() {
            out.collect(previous, file, bad, strict)?;
        }
        let parsed: Vec<Piece> = pieces
            .par_iter()
            .map(|piece| parse_piece(model, piece, file))
            .collect();
        let _ = recycle.try_send(chunk);
        pending.extend(parsed);
        let pending_bytes: usize = pending.iter().map(Piece::memory).sum();
        let ready = if pending_bytes > PENDING_BUDGET {
            leads.wait()
        } else {
            leads.ready()
        };
        if let Some(ids) = ready {
            let resolved = std::mem::take(&mut pending)
                .into_par_iter()
                .map(|p| resolve_piece(p, ids, file))
                .collect();
            // Collected while the next chunk parses, like any other.
            waiting = Some(resolved);
        }
    }
    if let Some(previous) = waiting.take() {
        out.collect(previous, file, bad, strict)?;
    }
    reader.join().expect("the reader thread does not panic")?;
    let Some(ids) = leads.wait() else {
        return Ok(None);
    };
    let resolved = pending
        .into_par_iter()
        .map(|p| resolve_piece(p, ids, file))
        .collect();
    out.collect(resolved, file, bad, strict)?;

    let Collected {
        hits: pieces,
        mut per_lead,
        dedup,
        ..
    } = out;
    let mut hits = Hits {
        pieces,
        per_lead: Vec::new(),
    };
    let duplicates = dedup.duplicate_lines(|hashes| ids_with_hashes(model, ids, file, hashes))?;
    if !duplicates.is_empty() {
        hits.pieces
            .par_iter_mut()
            .for_each(|piece| piece.retain(|h| duplicates.binary_search(&h.seq).is_err()));
        // Rare: count again rather than track what the filter removed.
        per_lead.iter_mut().for_each(|c| *c = 0);
        for h in hits.pieces.iter().flatten() {
            per_lead[h.lead as usize] += 1;
        }
    }
    per_lead.resize(ids.len(), 0);
    hits.per_lead = per_lead;
    Ok(Some((hits, duplicates.len() as u64)))
}

/// The hits of the whole file.
#[derive(Default)]
pub struct Hits {
    /// A vector per parsed piece, in line order.
    pub pieces: Vec<Vec<LeadHit>>,
    /// How many hits each lead has (indexed by lead; empty when there are none).
    pub per_lead: Vec<usize>,
}

struct Collected {
    hits: Vec<Vec<LeadHit>>,
    /// Hits per lead, counted as pieces are collected (grown as leads appear).
    per_lead: Vec<usize>,
    dedup: Dedup,
    /// The file-wide number of the next piece's first line.
    next_line: u64,
}

impl Collected {
    /// Takes matched pieces in line order: numbers their lines file-wide and
    /// reports their bad rows.
    fn collect(
        &mut self,
        resolved: Vec<Resolved>,
        file: &str,
        bad: &mut BadRows,
        strict: bool,
    ) -> Result<()> {
        for mut r in resolved {
            let shift = self.next_line - 1;
            self.next_line += r.lines;
            for mut row in r.bad {
                row.line += shift;
                if strict && row.kind == BadKind::UnknownLead {
                    name_unknown_leads(std::slice::from_mut(&mut row), file)?;
                }
                reject(bad, strict, row)?;
            }
            for h in &mut r.hits {
                h.seq += shift;
                let lead = h.lead as usize;
                if lead >= self.per_lead.len() {
                    self.per_lead.resize(lead + 1, 0);
                }
                self.per_lead[lead] += 1;
            }
            self.dedup.extend(&r.ids);
            self.hits.push(r.hits);
        }
        Ok(())
    }
}

fn resolve_piece(p: Piece, ids: &LeadIds, file: &str) -> Resolved {
    let mut out = Resolved {
        lines: p.lines,
        hits: Vec::with_capacity(p.rules.len()),
        ids: Vec::with_capacity(p.events.len()),
        bad: p.bad,
    };
    let mut unknown = false;
    // Look the leads up first, in a tight loop, so the CPU overlaps the cache misses.
    let found: Vec<Option<u32>> = p.events.iter().map(|e| ids.find_key(e.lead)).collect();
    let mut rules_start = 0usize;
    for (e, lead) in p.events.iter().zip(found) {
        let rules = &p.rules[rules_start..e.rules_end as usize];
        rules_start = e.rules_end as usize;
        let line = p.first_line + u64::from(e.line_offset);
        match lead {
            Some(lead) => {
                out.ids.push(e.id_hash);
                out.hits.extend(rules.iter().map(|&rule| LeadHit {
                    lead,
                    rule,
                    at: e.at,
                    seq: line,
                }));
            }
            None => {
                unknown = true;
                // The id itself is filled in later for the rows that are shown (see `name_unknown_leads`).
                let detail = UNKNOWN_LEAD.to_owned();
                out.bad
                    .push(BadRow::new(file, line, BadKind::UnknownLead, detail));
            }
        }
    }
    if unknown {
        out.bad.sort_by_key(|b| b.line);
    }
    out
}

const UNKNOWN_LEAD: &str = "no lead with this id in the leads file";

/// Puts the lead's id into the messages of the unknown-lead rows that are
/// shown, reading those few lines again (parsed events keep only a hash of
/// their lead, to stay small).
pub fn name_unknown_leads(rows: &mut [BadRow], file: &str) -> Result<()> {
    let mut wanted: Vec<u64> = rows
        .iter()
        .filter(|r| r.kind == BadKind::UnknownLead && r.file == file)
        .map(|r| r.line)
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    wanted.sort_unstable();
    let last = *wanted.last().expect("not empty");
    let input = std::fs::File::open(file).with_context(|| format!("{file}: cannot open again"))?;
    let mut names = std::collections::HashMap::new();
    for (i, line) in BufReader::new(input).split(b'\n').enumerate() {
        let no = i as u64 + 1;
        if no > last {
            break;
        }
        let line = line.with_context(|| format!("{file}: cannot read again"))?;
        if wanted.binary_search(&no).is_ok()
            && let Ok(ev) = parse_line(line.strip_suffix(b"\r").unwrap_or(&line))
        {
            names.insert(no, ev.lead.into_owned());
        }
    }
    for row in rows
        .iter_mut()
        .filter(|r| r.kind == BadKind::UnknownLead && r.file == file)
    {
        if let Some(id) = names.get(&row.line) {
            row.detail = format!("no lead with id `{id}` in the leads file");
        }
    }
    Ok(())
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
        // Read a chunk's worth, then on until a line end, so that a line longer
        // than a chunk still arrives whole.
        let mut want = CHUNK as u64;
        let eof = loop {
            let before = buf.len();
            let got = match input.by_ref().take(want).read_to_end(&mut buf) {
                Ok(n) => n as u64,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return Ok(());
                }
            };
            if got < want {
                break true;
            }
            if memchr::memchr(b'\n', &buf[before..]).is_some() {
                break false;
            }
            want = CHUNK as u64;
        };
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

/// Parses one piece; its lines are numbered from 1 here (the caller shifts them).
fn parse_piece(model: &ScoringModel, piece: &[u8], file: &str) -> Piece {
    let mut out = Piece {
        first_line: 1,
        ..Piece::default()
    };
    // Sized for the usual line length, so the vectors rarely regrow.
    out.events.reserve(piece.len() / 96);
    out.rules.reserve(piece.len() / 192);
    // One UTF-8 check for the whole piece (SIMD over half a megabyte) rather
    // than one per line; lines then come as text, cut at '\n' (always a char
    // boundary).
    let text = simdutf8::basic::from_utf8(piece).ok();
    // Likewise one check for escapes and control characters: a piece without
    // any (the usual case) spares each line its own check.
    let plain = text.is_some() && !has_escape_or_control_but_newline(piece);
    let mut start = 0;
    let mut line_no = 0;
    while start < piece.len() {
        let end = memchr::memchr(b'\n', &piece[start..]).map_or(piece.len(), |i| start + i);
        let range = start..end;
        start = end + 1;
        line_no += 1;
        // The usual line: canonical layout, no escapes, read in place.
        if let Some(text) = text
            && (plain || !swar::has_escape_or_control(&piece[range.clone()]))
            && let Some(ev) = Canonical::parse(&text[range.clone()])
        {
            let props = &ev;
            if let Err((kind, detail)) = push_event(
                model,
                [ev.id, ev.lead, ev.kind, ev.occurred_at],
                props,
                line_no,
                &mut out,
            ) {
                out.bad.push(BadRow::new(file, line_no, kind, detail));
            }
            continue;
        }
        let line = &piece[range];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Err((kind, detail)) = parse_event(model, line, line_no, &mut out) {
            out.bad.push(BadRow::new(file, line_no, kind, detail));
        }
    }
    out.lines = line_no;
    out
}

/// Does the text hold a backslash or a control character other than '\n'?
/// Written as a branch-free fold over fixed blocks so that it vectorises.
fn has_escape_or_control_but_newline(text: &[u8]) -> bool {
    text.chunks(64).any(|block| {
        block.iter().fold(0u8, |acc, &b| {
            acc | u8::from(b == b'\\') | u8::from(b < 0x20 && b != b'\n')
        }) != 0
    })
}

/// Validates one line and appends it, with the rules it counts for, to `out`.
fn parse_event(
    model: &ScoringModel,
    line: &[u8],
    line_no: u64,
    out: &mut Piece,
) -> Result<(), (BadKind, String)> {
    let ev = parse_line(line).map_err(|e| match e {
        LineError::NotJson(m) => (BadKind::NotJson, m),
        LineError::MissingField(f) => (BadKind::MissingField, format!("the event has no `{f}`")),
        LineError::WrongType(m) => (BadKind::WrongType, m),
        LineError::UnknownField(m) => (
            BadKind::UnknownField,
            format!("{m} (an event has id, lead, type, occurred_at, properties)"),
        ),
    })?;
    push_event(
        model,
        [&ev.id, &ev.lead, &ev.kind, &ev.occurred_at],
        &ev,
        line_no,
        out,
    )
}

/// Checks a read event's fields ([id, lead, type, occurred_at]) and appends
/// it, with the rules it counts for, to `out`.
#[inline]
fn push_event(
    model: &ScoringModel,
    fields: [&str; 4],
    properties: &dyn PropertyLookup,
    line_no: u64,
    out: &mut Piece,
) -> Result<(), (BadKind, String)> {
    let [id, lead, kind, occurred_at] = fields;
    for (name, v) in [("id", id), ("lead", lead), ("type", kind)] {
        let starts_plain = v.as_bytes().first().is_some_and(|b| !b.is_ascii_whitespace());
        if !starts_plain && v.trim().is_empty() {
            return Err((BadKind::MissingField, format!("the event's `{name}` is blank")));
        }
    }
    let at =
        Timestamp::parse(occurred_at).map_err(|e| (BadKind::BadTimestamp, format!("occurred_at: {e}")))?;
    for &r in model.rules_listing(kind) {
        if model.behavior[usize::from(r)].matches_properties(properties) {
            out.rules.push(r);
        }
    }
    out.events.push(Parsed {
        line_offset: (line_no - out.first_line) as u32,
        lead: LeadKey::of(lead),
        id_hash: id_hash(id),
        at,
        rules_end: out.rules.len() as u32,
    });
    Ok(())
}

/// A whole check of one line, lead included: the id hash of a valid event.
fn check_line(model: &ScoringModel, leads: &LeadIds, line: &[u8]) -> Option<u64> {
    let mut piece = Piece {
        first_line: 1,
        ..Piece::default()
    };
    parse_event(model, line, 1, &mut piece).ok()?;
    let e = piece.events.pop()?;
    leads.find_key(e.lead).map(|_| e.id_hash)
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
