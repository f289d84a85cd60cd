//! Events with the same id are the same event: the first one in the file wins.
//!
//! Keeping every id string of a multi-gigabyte file would cost more memory
//! than the scoring itself, so the filter keeps 64-bit hashes and checks
//! them for repeats once at the end. A hash seen twice is only a *suspect*: the
//! lines with suspect hashes are read again and their ids compared, so a hash
//! collision never drops an event.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use anyhow::Result;
use rayon::prelude::*;

/// The hash of an event id (stable within a run).
pub fn id_hash(id: &str) -> u64 {
    foldhash::quality::FixedState::with_seed(0x6c65_6164_7363_6f72).hash_one(id)
}

/// The id hashes of every valid event, spread over partitions by their top
/// bits as they arrive, so that the final check works on small, cache-sized
/// partitions in parallel (a radix pass for free).
#[derive(Debug)]
pub struct Dedup {
    parts: Vec<Vec<u64>>,
}

const PART_BITS: u32 = 8;

impl Default for Dedup {
    fn default() -> Self {
        Dedup {
            parts: (0..1 << PART_BITS).map(|_| Vec::new()).collect(),
        }
    }
}

impl Dedup {
    /// Makes room for about `ids` ids in all, so the partitions do not regrow.
    pub fn reserve(&mut self, ids: u64) {
        let each = (ids >> PART_BITS) as usize * 33 / 32 + 16;
        self.parts.iter_mut().for_each(|p| p.reserve(each));
    }

    pub fn extend(&mut self, hashes: &[u64]) {
        for &h in hashes {
            self.parts[(h >> (64 - PART_BITS)) as usize].push(h);
        }
    }

    /// The lines (sorted) of events that repeat an earlier event's id.
    /// `lines_with` reads back the (line, id) of every event whose hash is a
    /// suspect (seen more than once).
    pub fn duplicate_lines(
        mut self,
        lines_with: impl FnOnce(&HashSet<u64>) -> Result<Vec<(u64, String)>>,
    ) -> Result<Vec<u64>> {
        // Each partition is checked with a small open-addressing set of its
        // hashes (cache-sized, linear time: cheaper than sorting them).
        let suspects: HashSet<u64> = std::mem::take(&mut self.parts)
            .into_par_iter()
            .flat_map_iter(repeated)
            .collect();
        if suspects.is_empty() {
            return Ok(Vec::new());
        }
        let mut first: HashMap<String, u64> = HashMap::new();
        let mut dups = Vec::new();
        let mut lines = lines_with(&suspects)?;
        lines.sort_unstable_by_key(|(line, _)| *line);
        for (line, id) in lines {
            match first.entry(id) {
                std::collections::hash_map::Entry::Occupied(_) => dups.push(line),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(line);
                }
            }
        }
        Ok(dups)
    }
}

/// The hashes that occur more than once in `part` (each once).
fn repeated(part: Vec<u64>) -> Vec<u64> {
    // Slots hold hashes; 0 marks an empty slot, so a hash of 0 is counted apart.
    // At most two-thirds full, and small enough to stay in the core's cache.
    let size = (part.len() * 3 / 2).next_power_of_two().max(16);
    let mask = size - 1;
    let mut slots = vec![0u64; size];
    let mut zeros = 0usize;
    let mut again = Vec::new();
    for &h in &part {
        if h == 0 {
            zeros += 1;
            if zeros == 2 {
                again.push(0);
            }
            continue;
        }
        // The top bits are the partition's, the same for all: place by the low ones.
        let mut i = h as usize & mask;
        loop {
            match slots[i] {
                0 => {
                    slots[i] = h;
                    break;
                }
                s if s == h => {
                    again.push(h);
                    break;
                }
                _ => i = (i + 1) & mask,
            }
        }
    }
    // A hash seen three times is pushed twice; the caller collects into a set.
    again
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspects_are_resolved_by_comparing_ids() {
        let mut d = Dedup::default();
        let (a, b) = (id_hash("e1"), id_hash("e2"));
        d.extend(&[a, b, a]);
        d.extend(&[b, a]);
        // Pretend e2 and e9 collided: lines 2 and 4 hold e2 and e9 (not a duplicate).
        let dups = d
            .duplicate_lines(|h| {
                assert!(h.contains(&a) && h.contains(&b));
                Ok(vec![
                    (1, "e1".into()),
                    (2, "e2".into()),
                    (3, "e1".into()),
                    (4, "e9".into()),
                    (5, "e1".into()),
                ])
            })
            .unwrap();
        assert_eq!(dups, vec![3, 5]);
    }

    #[test]
    fn repeated_finds_every_repeat_zero_included() {
        let mut part: Vec<u64> = (1..5000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        part.extend([0, 7, 0, 7, 7, 42]);
        part.push(part[10]);
        let mut got = repeated(part.clone());
        got.sort_unstable();
        got.dedup();
        let mut expected = vec![0, 7, part[10]];
        expected.sort_unstable();
        assert_eq!(got, expected);
    }

    #[test]
    fn no_suspects_means_no_second_read() {
        let mut d = Dedup::default();
        d.extend(&[1 << 60, 2 << 58, 3]);
        assert_eq!(
            d.duplicate_lines(|_| panic!("must not read again")).unwrap(),
            Vec::<u64>::new()
        );
    }
}
