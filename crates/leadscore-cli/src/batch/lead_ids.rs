//! The leads' ids, packed in one string, with a hash index over them.
//!
//! Every event line looks its lead up here, so a lookup must touch as little
//! memory as possible: the table holds a second, independent 64-bit hash of
//! each id, and a lookup compares that instead of reading the id's text.
//! Two different ids would have to agree on both 64-bit hashes (a chance of
//! about 2^-128 per pair) to be confused.

use std::hash::BuildHasher;

use hashbrown::HashTable;

#[derive(Default)]
pub struct LeadIds {
    text: String,
    ends: Vec<u32>,
    table: HashTable<Entry>,
}

#[derive(Clone, Copy)]
struct Entry {
    check: u64,
    index: u32,
}

/// An id reduced to its two hashes: enough to look it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeadKey {
    place: u64,
    check: u64,
}

impl LeadKey {
    pub fn of(id: &str) -> LeadKey {
        let (place, check) = hashes(id);
        LeadKey { place, check }
    }
}

/// Two independent hashes of an id: one places it in the table, the other confirms it.
fn hashes(id: &str) -> (u64, u64) {
    use foldhash::fast::FixedState;
    (
        FixedState::with_seed(0x9e37_79b9_7f4a_7c15).hash_one(id),
        FixedState::with_seed(0xc2b2_ae3d_27d4_eb4f).hash_one(id),
    )
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

    pub fn find(&self, id: &str) -> Option<u32> {
        self.find_key(LeadKey::of(id))
    }

    pub fn find_key(&self, key: LeadKey) -> Option<u32> {
        self.table
            .find(key.place, |e| e.check == key.check)
            .map(|e| e.index)
    }

    /// Adds an id; `false` (and nothing added) when it is already there.
    ///
    /// # Panics
    /// When the ids together exceed 4 GiB.
    pub fn insert(&mut self, id: &str) -> bool {
        if self.find(id).is_some() {
            return false;
        }
        self.text.push_str(id);
        let end = u32::try_from(self.text.len()).expect("lead ids fit in 4 GiB");
        let (place, check) = hashes(id);
        let entry = Entry {
            check,
            index: self.ends.len() as u32,
        };
        self.ends.push(end);
        let (text, ends) = (&self.text, &self.ends);
        self.table.insert_unique(place, entry, |e| {
            let i = e.index as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] as usize };
            hashes(&text[start..ends[i] as usize]).0
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
