//! Ticks for the agent only when it has timed work (issue 4: no background
//! wakeups when nothing is pending).
//!
//! After every event the agent thread publishes [`Agent::next_tick`]: the
//! next expiry, custody timeout, assembly retry or housekeeping time. The
//! ticker sleeps until then (never sooner than one tick period after the
//! previous tick), and not at all while nothing is pending: an idle node's
//! agent thread stays asleep until a peer, a client or a watched folder
//! brings an event.
//!
//! [`Agent::next_tick`]: crate::agent::Agent::next_tick

use super::{Command, Shared, dtn_now};
use crate::agent::Event;
use crate::bundle::DtnTime;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// "Nothing pending" in [`TickSchedule::due_ms`].
const NONE: u64 = u64::MAX;

/// Longest sleep while something is pending: the due time is on the
/// system clock, which may be stepped back.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// When the agent next needs [`Event::Tick`], shared by the agent thread
/// (writer) and [`run`] (reader).
#[derive(Debug)]
pub(crate) struct TickSchedule {
    /// DTN time in ms; [`NONE`] when nothing is pending; 0 at start-up
    /// (tick at once).
    due_ms: AtomicU64,
    changed: Notify,
}

impl TickSchedule {
    pub(crate) fn new() -> Self {
        TickSchedule {
            due_ms: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    /// Records the agent's next tick time (`None`: nothing pending) and
    /// wakes the ticker only if it moved earlier: a later time is seen when
    /// the ticker wakes for the earlier one, so the busy agent (a new time
    /// after nearly every event) does not wake the ticker each time.
    pub(crate) fn publish(&self, due: Option<DtnTime>) {
        let v = due.map_or(NONE, |d| d.0);
        if v < self.due_ms.swap(v, Ordering::Relaxed) {
            self.changed.notify_one();
        }
    }

    /// The published time (`None`: nothing pending).
    pub(crate) fn due(&self) -> Option<DtnTime> {
        Some(self.due_ms.load(Ordering::Relaxed))
            .filter(|&v| v != NONE)
            .map(DtnTime)
    }
}

/// Sends [`Event::Tick`] when the published time comes, at most once per
/// `period`; waits for a new time while nothing is pending.
pub(crate) async fn run(shared: Arc<Shared>, period: Duration) {
    let s = &shared.ticks;
    let mut earliest = tokio::time::Instant::now();
    loop {
        let Some(due) = s.due() else {
            s.changed.notified().await;
            continue;
        };
        let wait = Duration::from_millis(due.0.saturating_sub(dtn_now().0)).min(MAX_SLEEP);
        let at = (tokio::time::Instant::now() + wait).max(earliest);
        tokio::select! {
            () = tokio::time::sleep_until(at) => {
                if s.due().is_none_or(|d| d.0 > dtn_now().0) {
                    continue; // moved later (or away) meanwhile
                }
                earliest = tokio::time::Instant::now() + period;
                if shared.cmd.send(Command::Event(Event::Tick)).await.is_err() {
                    return;
                }
            }
            () = s.changed.notified() => {}
        }
    }
}
