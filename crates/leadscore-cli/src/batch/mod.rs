//! `leadscore score`: a whole file of leads (and their events) scored at once.

pub mod bad_rows;
mod dedup;
mod events_jsonl;
pub mod json_line;
mod lead_ids;
use lead_ids::LeadIds;
mod leads_csv;

use std::cell::{OnceCell, RefCell};
use std::fs::File;
use std::thread::ScopedJoinHandle;

use anyhow::{Context, Result};
use leadscore_core::{Hit, Score, ScoringModel, Timestamp};
use rayon::prelude::*;

pub use bad_rows::BadRows;
pub use leads_csv::StrictStop;

/// Every lead's score, best first (ties by lead id ascending).
#[derive(Debug)]
pub struct Scored {
    pub ids: LeadIds,
    /// (index into `ids`, score), sorted for output.
    pub ranked: Vec<(u32, Score)>,
    pub bad: BadRows,
    pub duplicates: u64,
}

pub struct Inputs<'a> {
    pub leads: &'a str,
    /// Prints stage timings (see [`Timer`]).
    pub timer: &'a Timer,
    pub events: Option<&'a str>,
    pub as_of: Timestamp,
    pub strict: bool,
}

pub fn score_files(model: &ScoringModel, inputs: &Inputs) -> Result<Scored> {
    let timer = inputs.timer;
    let leads_file =
        File::open(inputs.leads).with_context(|| format!("cannot open leads file {}", inputs.leads))?;
    let events_file = match inputs.events {
        Some(path) => Some((
            path,
            File::open(path).with_context(|| format!("cannot open events file {path}"))?,
        )),
        None => None,
    };

    // The leads load on their own thread while the events are parsed; events
    // are matched to their leads as soon as the leads are in.
    let (table, bad, hits, duplicates) = std::thread::scope(|s| -> Result<_> {
        let job = s.spawn(|| {
            let mut bad = BadRows::default();
            let size = leads_file.metadata().ok().map(|m| m.len());
            let input = std::io::BufReader::with_capacity(1 << 20, leads_file);
            let table = leads_csv::read_leads(model, input, size, inputs.leads, &mut bad, inputs.strict)?;
            timer.mark("leads read and fit evaluated");
            Ok((table, bad))
        });
        let leads = Loading {
            job: RefCell::new(Some(job)),
            done: OnceCell::new(),
        };
        let mut event_bad = BadRows::default();
        let events = match events_file {
            None => Ok(Some((events_jsonl::Hits::default(), 0))),
            Some((path, f)) => {
                let size = f.metadata().ok().map(|m| m.len());
                events_jsonl::read_events(model, &leads, f, path, size, &mut event_bad, inputs.strict)
            }
        };
        // A problem with the leads file comes first: it is read first.
        let (table, mut bad) = leads.finish()?;
        let (hits, duplicates) = events?.expect("the leads loaded, so the events were read");
        if let Some(path) = inputs.events {
            events_jsonl::name_unknown_leads(event_bad.shown_mut(), path)?;
        }
        bad.append(event_bad);
        Ok((table, bad, hits, duplicates))
    })?;
    timer.mark("events read");

    // Group hits by lead (a counting sort: the hits per lead were counted as
    // they were collected), then score leads in parallel. The placing runs
    // in parallel over ranges of leads: each range's task reads all hits (a
    // sequential read) and places only its own, so the random writes are
    // shared out without any locking.
    let n = table.ids.len();
    let parts = rayon::current_num_threads().max(1);
    let bounds: Vec<usize> = (0..=parts).map(|p| n * p / parts).collect();
    let events_jsonl::Hits {
        pieces: hits,
        mut per_lead,
    } = hits;
    per_lead.resize(n, 0);
    let mut starts = Vec::with_capacity(n + 1);
    starts.push(0usize);
    for c in &per_lead {
        starts.push(starts[starts.len() - 1] + c);
    }
    drop(per_lead);
    let mut grouped = vec![
        Hit {
            rule: 0,
            at: Timestamp::from_micros(0),
            seq: 0
        };
        starts[n]
    ];
    let hit_bounds: Vec<usize> = bounds.iter().map(|&b| starts[b]).collect();
    split_at_bounds(&mut grouped, &hit_bounds)
        .into_par_iter()
        .enumerate()
        .for_each(|(p, part)| {
            let range = bounds[p]..bounds[p + 1];
            let mut next: Vec<usize> = starts[range.clone()].iter().map(|s| s - hit_bounds[p]).collect();
            for h in hits.iter().flatten() {
                if range.contains(&(h.lead as usize)) {
                    let slot = &mut next[h.lead as usize - range.start];
                    part[*slot] = Hit {
                        rule: h.rule,
                        at: h.at,
                        seq: h.seq,
                    };
                    *slot += 1;
                }
            }
        });
    drop(hits);
    timer.mark("hits grouped by lead");
    let mut slices: Vec<&mut [Hit]> = Vec::with_capacity(n);
    let mut rest: &mut [Hit] = &mut grouped;
    for i in 0..n {
        let (head, tail) = rest.split_at_mut(starts[i + 1] - starts[i]);
        slices.push(head);
        rest = tail;
    }
    let scores: Vec<Score> = slices
        .into_par_iter()
        .enumerate()
        .map(|(i, lead_hits)| model.score_hits(&table.fits[i], lead_hits, inputs.as_of))
        .collect();
    // The hits are no longer needed: free them before sorting and output.
    drop(grouped);
    timer.mark("scored");
    // Best score first, then lead id. Small keys are sorted rather than the
    // scores themselves (cheap moves), and the ids' first eight bytes settle
    // almost every tie without reading the ids. Equal scores compare equal
    // as with `==` (so 0 and -0 tie and go by id).
    let ids = &table.ids;
    let mut order: Vec<(f64, u64, u32)> = scores
        .par_iter()
        .enumerate()
        .map(|(i, s)| {
            let score = if s.score == 0.0 { 0.0 } else { s.score };
            (score, id_prefix(ids.get(i as u32)), i as u32)
        })
        .collect();
    order.par_sort_unstable_by(|a, b| {
        (b.0.total_cmp(&a.0))
            .then(a.1.cmp(&b.1))
            .then_with(|| ids.get(a.2).cmp(ids.get(b.2)))
    });
    let mut scores: Vec<Option<Score>> = scores.into_iter().map(Some).collect();
    let ranked: Vec<(u32, Score)> = order
        .into_iter()
        .map(|(_, _, i)| (i, scores[i as usize].take().expect("each lead once")))
        .collect();
    timer.mark("sorted");
    Ok(Scored {
        ids: table.ids,
        ranked,
        bad,
        duplicates,
    })
}

type LeadsResult = Result<(leads_csv::LeadTable, BadRows)>;

/// `v` cut at the (ascending) offsets `bounds`, from `bounds[0]` to the last.
fn split_at_bounds<'a, T>(mut v: &'a mut [T], bounds: &[usize]) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(bounds.len());
    for w in bounds.windows(2) {
        let (head, tail) = v.split_at_mut(w[1] - w[0]);
        out.push(head);
        v = tail;
    }
    out
}

/// The first eight bytes of an id as a number that orders as the text does
/// (zero-padded: an id that ends sooner sorts first, as it does as text, or
/// ties and is settled by the full comparison).
fn id_prefix(id: &str) -> u64 {
    let mut b = [0u8; 8];
    let n = id.len().min(8);
    b[..n].copy_from_slice(&id.as_bytes()[..n]);
    u64::from_be_bytes(b)
}

/// The leads loading on a scoped thread, seen by the events reader.
struct Loading<'scope> {
    job: RefCell<Option<ScopedJoinHandle<'scope, LeadsResult>>>,
    done: OnceCell<LeadsResult>,
}

impl Loading<'_> {
    fn join(&self) {
        if let Some(job) = self.job.borrow_mut().take() {
            let result = job
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("reading the leads failed unexpectedly")));
            let _ = self.done.set(result);
        }
    }

    fn finish(self) -> LeadsResult {
        self.join();
        self.done.into_inner().expect("joined")
    }
}

impl events_jsonl::LeadsSource for Loading<'_> {
    fn ready(&self) -> Option<&LeadIds> {
        if self.done.get().is_none() && self.job.borrow().as_ref().is_some_and(|j| j.is_finished()) {
            self.join();
        }
        self.done.get()?.as_ref().ok().map(|(t, _)| &t.ids)
    }

    fn wait(&self) -> Option<&LeadIds> {
        self.join();
        self.done.get()?.as_ref().ok().map(|(t, _)| &t.ids)
    }
}

/// Stage timings on stderr when `LEADSCORE_TIMINGS` is set (for benchmarking).
#[derive(Debug)]
pub struct Timer(Option<std::time::Instant>);

impl Default for Timer {
    fn default() -> Self {
        Timer::new()
    }
}

impl Timer {
    pub fn new() -> Self {
        Timer(std::env::var_os("LEADSCORE_TIMINGS").map(|_| std::time::Instant::now()))
    }

    pub fn mark(&self, stage: &str) {
        if let Some(start) = self.0 {
            eprintln!("timing: {:>8.3} s  {stage}", start.elapsed().as_secs_f64());
        }
    }
}
