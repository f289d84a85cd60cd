//! `leadscore score`: a whole file of leads (and their events) scored at once.

pub mod bad_rows;
mod dedup;
mod events_jsonl;
pub mod json_line;
mod lead_ids;
mod leads_csv;

use std::fs::File;

use anyhow::{Context, Result};
use leadscore_core::{Hit, Score, ScoringModel, Timestamp};
use rayon::prelude::*;

pub use bad_rows::BadRows;
pub use leads_csv::StrictStop;

/// Every lead's score, best first (ties by lead id ascending).
#[derive(Debug)]
pub struct Scored {
    pub ids: lead_ids::LeadIds,
    /// (index into `ids`, score), sorted for output.
    pub ranked: Vec<(u32, Score)>,
    pub bad: BadRows,
    pub duplicates: u64,
    pub events_counted: usize,
}

pub struct Inputs<'a> {
    pub leads: &'a str,
    pub events: Option<&'a str>,
    pub as_of: Timestamp,
    pub strict: bool,
}

pub fn score_files(model: &ScoringModel, inputs: &Inputs) -> Result<Scored> {
    let timer = Timer::new();
    let mut bad = BadRows::default();
    let leads_file =
        File::open(inputs.leads).with_context(|| format!("cannot open leads file {}", inputs.leads))?;
    let table = leads_csv::read_leads(
        model,
        std::io::BufReader::with_capacity(1 << 20, leads_file),
        inputs.leads,
        &mut bad,
        inputs.strict,
    )?;

    timer.mark("leads read and fit evaluated");
    let (hits, duplicates) = match inputs.events {
        None => (Vec::new(), 0),
        Some(path) => {
            let f = File::open(path).with_context(|| format!("cannot open events file {path}"))?;
            let size = f.metadata().ok().map(|m| m.len());
            events_jsonl::read_events(model, &table.ids, f, path, size, &mut bad, inputs.strict)?
        }
    };
    let events_counted = hits.len();
    timer.mark("events read");

    // Group hits by lead (a counting sort), then score leads in parallel.
    let n = table.ids.len();
    let mut starts = vec![0usize; n + 1];
    for h in &hits {
        starts[h.lead as usize + 1] += 1;
    }
    for i in 0..n {
        starts[i + 1] += starts[i];
    }
    let mut grouped = vec![
        Hit {
            rule: 0,
            at: Timestamp::from_micros(0),
            seq: 0
        };
        hits.len()
    ];
    let mut next = starts.clone();
    for h in hits {
        let slot = &mut next[h.lead as usize];
        grouped[*slot] = Hit {
            rule: h.rule,
            at: h.at,
            seq: h.seq,
        };
        *slot += 1;
    }

    let mut slices: Vec<&mut [Hit]> = Vec::with_capacity(n);
    let mut rest: &mut [Hit] = &mut grouped;
    for i in 0..n {
        let (head, tail) = rest.split_at_mut(starts[i + 1] - starts[i]);
        slices.push(head);
        rest = tail;
    }
    let mut ranked: Vec<(u32, Score)> = slices
        .into_par_iter()
        .enumerate()
        .map(|(i, lead_hits)| {
            (
                i as u32,
                model.score_hits(&table.fits[i], lead_hits, inputs.as_of),
            )
        })
        .collect();
    timer.mark("scored");
    ranked.par_sort_unstable_by(|(a, sa), (b, sb)| {
        sb.score
            .total_cmp(&sa.score)
            .then_with(|| table.ids.get(*a).cmp(table.ids.get(*b)))
    });
    timer.mark("sorted");
    Ok(Scored {
        ids: table.ids,
        ranked,
        bad,
        duplicates,
        events_counted,
    })
}

/// Stage timings on stderr when `LEADSCORE_TIMINGS` is set (for benchmarking).
struct Timer(Option<std::time::Instant>);

impl Timer {
    fn new() -> Self {
        Timer(std::env::var_os("LEADSCORE_TIMINGS").map(|_| std::time::Instant::now()))
    }

    fn mark(&self, stage: &str) {
        if let Some(start) = self.0 {
            eprintln!("timing: {:>8.3} s  {stage}", start.elapsed().as_secs_f64());
        }
    }
}
