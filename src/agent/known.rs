//! Bundles this node knows reached their destination after it released
//! its own copy (spec/custody.md §Copies at the destination): it handed
//! the bundle to the destination, or the destination's summary listed it.
//! They go into this node's contact summaries, so that peers still
//! holding a copy do not hand the bundle back again and again.
//!
//! In memory only and bounded: after a restart, or for the oldest entries,
//! a peer may offer such a bundle once more, which costs a transfer and
//! loses nothing. An entry goes when its bundle's lifetime ends (nobody
//! holds a copy any more), so summaries do not grow with old traffic.

use std::collections::{HashSet, VecDeque};

/// Bundles remembered at most (≈ 60 bytes each with their set entry:
/// about 4 MiB).
pub const MAX_KNOWN_DELIVERED: usize = 65_536;

/// A bounded set of bundle keys with their expiry (DTN ms), oldest
/// forgotten first.
#[derive(Debug, Default)]
pub(super) struct KnownDelivered {
    order: VecDeque<(Vec<u8>, u64)>,
    set: HashSet<Vec<u8>>,
}

impl KnownDelivered {
    /// Remembers `key` (bundle key bytes) until `expiry_ms` (DTN ms);
    /// forgets the oldest beyond [`MAX_KNOWN_DELIVERED`].
    pub(super) fn insert(&mut self, key: &[u8], expiry_ms: u64) {
        if self.set.contains(key) {
            return;
        }
        if self.order.len() >= MAX_KNOWN_DELIVERED {
            if let Some((old, _)) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(key.to_vec());
        self.order.push_back((key.to_vec(), expiry_ms));
    }

    /// Forgets the bundles whose lifetime ended by `now_ms` (DTN ms).
    pub(super) fn prune(&mut self, now_ms: u64) {
        let set = &mut self.set;
        self.order.retain(|(key, expiry)| {
            let keep = *expiry > now_ms;
            if !keep {
                set.remove(key);
            }
            keep
        });
    }

    /// The newest `n` keys, newest first.
    pub(super) fn newest(&self, n: usize) -> impl Iterator<Item = &Vec<u8>> {
        self.order.iter().rev().take(n).map(|(key, _)| key)
    }

    /// How many keys are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_newest_first_and_without_repeats() {
        let mut k = KnownDelivered::default();
        k.insert(b"a", 100);
        k.insert(b"b", 50);
        k.insert(b"a", 100);
        assert_eq!(k.len(), 2);
        let newest: Vec<&[u8]> = k.newest(5).map(Vec::as_slice).collect();
        assert_eq!(newest, [b"b".as_slice(), b"a"]);
        k.prune(50);
        let left: Vec<&[u8]> = k.newest(5).map(Vec::as_slice).collect();
        assert_eq!(left, [b"a".as_slice()], "b's lifetime ended at 50");
        assert!(!k.set.contains(b"b".as_slice()));
        for i in 0..MAX_KNOWN_DELIVERED as u32 {
            k.insert(&i.to_be_bytes(), u64::MAX);
        }
        assert_eq!(k.len(), MAX_KNOWN_DELIVERED);
        assert!(!k.set.contains(b"a".as_slice()), "the oldest went first");
        assert_eq!(k.set.len(), MAX_KNOWN_DELIVERED);
    }
}
