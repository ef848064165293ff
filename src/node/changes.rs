//! "The store changed": a push signal for the node's background loops
//! (asset adverts, the delta supply of folder sync) so that they look at
//! the store when it changed instead of polling it (issue 4: no background
//! wakeups when nothing is pending).
//!
//! The agent thread publishes the store's write count after every command
//! it handles; other writers (learned asset holders) publish after their
//! commit. A loop [`StoreChanges::subscribe`]s and awaits
//! `changed()`; an unchanged count wakes nobody.

use crate::store::Store;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;

/// The last published [`Store::write_count`], watched by the loops.
#[derive(Debug)]
pub(crate) struct StoreChanges {
    tx: watch::Sender<u64>,
    /// The count last sent: an unchanged count (most commands of a busy
    /// agent are reads or write nothing) costs one atomic swap, no lock.
    last: AtomicU64,
}

impl StoreChanges {
    pub(crate) fn new() -> Self {
        StoreChanges {
            tx: watch::Sender::new(0),
            last: AtomicU64::new(0),
        }
    }

    /// Publishes `store`'s write count; wakes the subscribers only if it
    /// moved since the last publication.
    pub(crate) fn publish(&self, store: &Store) {
        let n = store.write_count();
        if self.last.swap(n, Ordering::Relaxed) != n {
            self.tx.send_replace(n);
        }
    }

    /// A receiver whose `changed()` returns at the next publication that
    /// moved the count (the current count counts as seen).
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}
