//! The leads' ids, packed in one string, with a hash index over them.
//!
//! Every event line looks its lead up here, so the index must stay small
//! enough to live in the CPU caches: one packed string and a table of `u32`
//! rather than a map of boxed strings scattered over the heap.

use std::hash::BuildHasher;

use hashbrown::HashTable;

#[derive(Default)]
pub struct LeadIds {
    text: String,
    ends: Vec<u32>,
    /// Each entry holds the id's span in `text`, so a lookup touches the
    /// table and the text only, never `ends`.
    table: HashTable<Entry>,
    hasher: foldhash::fast::FixedState,
}

#[derive(Clone, Copy)]
struct Entry {
    start: u32,
    end: u32,
    index: u32,
}

impl std::fmt::Debug for LeadIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeadIds").field("len", &self.len()).finish()
    }
}

impl LeadIds {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn get(&self, i: u32) -> &str {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    fn span(&self, e: &Entry) -> &str {
        &self.text[e.start as usize..e.end as usize]
    }

    pub fn find(&self, id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        self.table.find(hash, |e| self.span(e) == id).map(|e| e.index)
    }

    /// Adds an id; `false` (and nothing added) when it is already there.
    ///
    /// # Panics
    /// When the ids together exceed 4 GiB.
    pub fn insert(&mut self, id: &str) -> bool {
        if self.find(id).is_some() {
            return false;
        }
        let start = u32::try_from(self.text.len()).expect("lead ids fit in 4 GiB");
        self.text.push_str(id);
        let end = u32::try_from(self.text.len()).expect("lead ids fit in 4 GiB");
        let entry = Entry {
            start,
            end,
            index: self.ends.len() as u32,
        };
        self.ends.push(end);
        let hash = self.hasher.hash_one(id);
        let (text, hasher) = (&self.text, &self.hasher);
        self.table.insert_unique(hash, entry, |e| {
            hasher.hash_one(&text[e.start as usize..e.end as usize])
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::LeadIds;

    #[test]
    fn finds_what_was_inserted_and_refuses_repeats() {
        let mut ids = LeadIds::default();
        for i in 0..10_000 {
            assert!(ids.insert(&format!("L{i}")));
        }
        assert!(!ids.insert("L42"));
        assert_eq!(ids.len(), 10_000);
        assert_eq!(ids.find("L42"), Some(42));
        assert_eq!(ids.get(9_999), "L9999");
        assert_eq!(ids.find("L10000"), None);
        assert_eq!(ids.find(""), None);
    }
}

#[cfg(test)]
mod bench_probe {
    #[test]
    #[ignore]
    fn lookup_cost() {
        let mut ids = super::LeadIds::default();
        for i in 0..200_000 {
            ids.insert(&format!("L{i}"));
        }
        let keys: Vec<String> = (0..5_000_000u64)
            .map(|i| format!("L{}", (i * 2_654_435_761) % 200_000))
            .collect();
        let t = std::time::Instant::now();
        let mut n = 0u64;
        for k in &keys {
            n += u64::from(ids.find(k).unwrap());
        }
        eprintln!("{:?} per lookup ({n})", t.elapsed() / 5_000_000);
    }
}
