//! Events with the same id are the same event: the first one in the file wins.
//!
//! Keeping every id string of a multi-gigabyte file would cost more memory
//! than the scoring itself, so the filter keeps 64-bit hashes, sharded so that
//! all threads insert at once. A hash seen twice is only a *suspect*: the
//! lines with suspect hashes are read again and their ids compared, so a hash
//! collision never drops an event.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use anyhow::Result;
use rayon::prelude::*;

/// The hash of an event id (stable within a run).
pub fn id_hash(id: &str) -> u64 {
    foldhash::quality::FixedState::with_seed(0x6c65_6164_7363_6f72).hash_one(id)
}

/// The keys are already hashes: use them as they are.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed")
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type HashSet64 = HashSet<u64, BuildHasherDefault<Identity>>;

#[derive(Default)]
pub struct Dedup {
    shards: Vec<HashSet64>,
    suspects: HashSet<u64>,
}

impl std::fmt::Debug for Dedup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedup")
            .field("shards", &self.shards.len())
            .field("suspects", &self.suspects.len())
            .finish()
    }
}

impl Dedup {
    pub fn new(shards: usize) -> Self {
        Dedup {
            shards: (0..shards).map(|_| HashSet64::default()).collect(),
            suspects: HashSet::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(HashSet::is_empty)
    }

    /// Makes room for about `ids` ids in all, so the filter does not rehash while growing.
    pub fn reserve(&mut self, ids: u64) {
        let n = self.shards.len() as u64;
        for s in &mut self.shards {
            s.reserve((ids / n + 1) as usize);
        }
    }

    /// Inserts the ids of one chunk, in file order.
    pub fn insert_all(&mut self, pieces: &[&[u64]]) {
        let n = self.shards.len();
        let found: Vec<Vec<u64>> = self
            .shards
            .par_iter_mut()
            .enumerate()
            .map(|(i, set)| {
                let mut again = Vec::new();
                for &h in pieces.iter().flat_map(|p| p.iter()) {
                    if ((h >> 57) as usize) % n == i && !set.insert(h) {
                        again.push(h);
                    }
                }
                again
            })
            .collect();
        self.suspects.extend(found.into_iter().flatten());
    }

    /// The lines (sorted) of events that repeat an earlier event's id.
    /// `lines_with` reads back the (line, id) of every event whose hash is a suspect.
    pub fn duplicate_lines(
        &self,
        lines_with: impl FnOnce(&HashSet<u64>) -> Result<Vec<(u64, String)>>,
    ) -> Result<Vec<u64>> {
        if self.suspects.is_empty() {
            return Ok(Vec::new());
        }
        let mut first: HashMap<String, u64> = HashMap::new();
        let mut dups = Vec::new();
        let mut lines = lines_with(&self.suspects)?;
        lines.sort_unstable_by_key(|(line, _)| *line);
        for (line, id) in lines {
            if first.contains_key(&id) {
                dups.push(line);
            } else {
                first.insert(id, line);
            }
        }
        Ok(dups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspects_are_resolved_by_comparing_ids() {
        let mut d = Dedup::new(2);
        let (a, b) = (id_hash("e1"), id_hash("e2"));
        d.insert_all(&[&[a, b], &[a]]);
        d.insert_all(&[&[b, a]]);
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
    fn no_suspects_means_no_second_read() {
        let mut d = Dedup::new(3);
        d.insert_all(&[&[1 << 60, 2 << 58, 3]]);
        assert_eq!(
            d.duplicate_lines(|_| panic!("must not read again")).unwrap(),
            Vec::<u64>::new()
        );
    }
}
