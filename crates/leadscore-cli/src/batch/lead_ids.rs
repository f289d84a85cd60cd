//! The leads' ids, packed in one string, with a hash index over them.
//!
//! Every event line looks its lead up here, so a lookup must touch as little
//! memory as possible: the index is one array of 16-byte slots (open
//! addressing, linear probing, at most four fifths full, so that
//! 200,000 leads take 4 MiB and stay in the last-level cache), each holding a second,
//! independent 64-bit hash of its id and 32 more bits of the first; a
//! lookup compares those instead of reading the id's text, and usually
//! reads a single cache line. Two different ids would have to agree on 96
//! bits of their hashes (a chance of about 2^-96 per pair) to be confused.

use std::hash::BuildHasher;

#[derive(Default)]
pub struct LeadIds {
    text: String,
    ends: Vec<u32>,
    /// A power of two long (or empty).
    slots: Vec<Slot>,
}

/// `index` is the id's index plus one; 0 marks an empty slot.
#[derive(Clone, Copy, Default)]
struct Slot {
    check: u64,
    place_high: u32,
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

    fn slot(self, index: u32) -> Slot {
        Slot {
            check: self.check,
            place_high: (self.place >> 32) as u32,
            index: index + 1,
        }
    }

    /// Where the key's probe sequence starts in a table of `len` (a power of
    /// two) slots: the top bits of the place hash times a large odd constant
    /// (the low bits of a fast string hash alone cluster too much).
    fn home(self, len: usize) -> usize {
        let bits = len.trailing_zeros();
        (self.place.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }

    fn is(self, slot: Slot) -> bool {
        slot.check == self.check && slot.place_high == (self.place >> 32) as u32
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

    #[cfg(test)]
    pub fn find(&self, id: &str) -> Option<u32> {
        self.find_key(LeadKey::of(id))
    }

    #[inline]
    pub fn find_key(&self, key: LeadKey) -> Option<u32> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut i = key.home(self.slots.len());
        loop {
            let slot = self.slots[i];
            if slot.index == 0 {
                return None;
            }
            if key.is(slot) {
                return Some(slot.index - 1);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds an id; `false` (and nothing added) when it is already there.
    ///
    /// # Panics
    /// When the ids together exceed 4 GiB.
    pub fn insert(&mut self, id: &str) -> bool {
        let key = LeadKey::of(id);
        if self.find_key(key).is_some() {
            return false;
        }
        if (self.ends.len() + 1) * 5 > self.slots.len() * 4 {
            self.grow();
        }
        self.text.push_str(id);
        let end = u32::try_from(self.text.len()).expect("lead ids fit in 4 GiB");
        let index = self.ends.len() as u32;
        self.ends.push(end);
        self.place(key, index);
        true
    }

    /// Puts a slot in the first free place of its probe sequence.
    fn place(&mut self, key: LeadKey, index: u32) {
        let mask = self.slots.len() - 1;
        let mut i = key.home(self.slots.len());
        while self.slots[i].index != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = key.slot(index);
    }

    /// Makes room for `more` ids of about `text_per_id` bytes each, so that
    /// they go in without the table growing (and rehashing) on the way.
    pub fn reserve(&mut self, more: usize, text_per_id: usize) {
        let ids = self.ends.len() + more;
        self.ends.reserve(more);
        self.text.reserve(more.saturating_mul(text_per_id));
        let size = (ids * 5 / 4 + 1).next_power_of_two().max(16);
        if size > self.slots.len() {
            self.rehash(size);
        }
    }

    /// Doubles the table (rehashing the ids' text: growth is rare and the
    /// slots stay small).
    fn grow(&mut self) {
        self.rehash((self.slots.len() * 2).max(16));
    }

    fn rehash(&mut self, size: usize) {
        self.slots = vec![Slot::default(); size];
        for i in 0..self.ends.len() as u32 {
            let key = LeadKey::of(self.get(i));
            self.place(key, i);
        }
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

    #[test]
    fn reserving_keeps_what_is_there_and_fits_more_without_growing() {
        let mut ids = LeadIds::default();
        for i in 0..100 {
            ids.insert(&format!("L{i}"));
        }
        ids.reserve(10_000, 6);
        let slots = ids.slots.len();
        assert!(slots * 4 >= 10_100 * 5, "{slots} slots");
        for i in 0..10_100 {
            ids.insert(&format!("L{i}"));
        }
        assert_eq!(ids.slots.len(), slots, "no growth after reserving");
        assert_eq!(ids.len(), 10_100);
        assert_eq!(ids.find("L42"), Some(42));
        assert_eq!(ids.find("L10099"), Some(10_099));
    }
}
