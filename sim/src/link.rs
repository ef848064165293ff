//! The link model: which links are up, and per-direction FIFO transfers.
//!
//! A link joins two nodes while a trace contact is up. Each direction sends
//! one bundle at a time at the configured bandwidth: a transfer queued at
//! `now` finishes at `max(now, busy_until) + len / bandwidth`. A transfer
//! not finished when the link goes down is aborted (the world tells the
//! sender with `Event::TransmitFailed`). Every up/down bumps the link's
//! generation so that completions scheduled for an earlier contact are
//! recognised as stale. Control messages (summaries, custody signals) do
//! not use this model: they are not bandwidth-limited.

use crate::trace::LinkParams;
use bytes::Bytes;
use spore::bundle::BundleId;
use std::collections::{HashMap, VecDeque};

/// A bundle on its way over one direction of a link.
#[derive(Clone, Debug)]
pub struct Pending {
    /// The bundle.
    pub id: BundleId,
    /// Its encoded bytes.
    pub bytes: Bytes,
    /// The workload message it carries, if any.
    pub msg: Option<u32>,
    /// Hops the bundle will have made on arrival.
    pub hops: u32,
}

/// One direction of a link.
#[derive(Debug, Default)]
struct Dir {
    busy_until_us: u64,
    queue: VecDeque<Pending>,
}

#[derive(Debug, Default)]
struct Link {
    up: bool,
    generation: u32,
    /// `[low → high, high → low]` by node ID.
    dirs: [Dir; 2],
    /// Rates `[low → high, high → low]` and delay of the current contact,
    /// when the trace gives them.
    params: Option<([Option<u64>; 2], u64)>,
}

/// What became of a transfer given to [`Links::enqueue`].
#[derive(Debug)]
pub enum Queued {
    /// Sent already (unlimited bandwidth, idle direction): deliver it after
    /// the delay. Not queued.
    Done(Pending),
    /// Queued; call [`Links::finish`] at `finish_us` with `generation`.
    Later {
        /// When the last byte is sent, µs.
        finish_us: u64,
        /// Link generation at queueing.
        generation: u32,
    },
    /// The link is down: nothing was queued.
    Down(Pending),
}

/// A transfer aborted by a link going down: (sender, receiver, bundle).
pub type Aborted = (u32, u32, BundleId);

/// All links, keyed by (low, high) node ID.
#[derive(Debug, Default)]
pub struct Links {
    map: HashMap<(u32, u32), Link>,
}

fn key(a: u32, b: u32) -> ((u32, u32), usize) {
    if a < b { ((a, b), 0) } else { ((b, a), 1) }
}

/// Time to send `len` bytes at `bandwidth` bytes/s, µs, rounded up;
/// 0 when unlimited (`None`).
pub fn transfer_us(len: usize, bandwidth: Option<u64>) -> u64 {
    match bandwidth {
        None => 0,
        Some(bw) => {
            let us = (len as u128 * 1_000_000).div_ceil(u128::from(bw.max(1)));
            u64::try_from(us).unwrap_or(u64::MAX)
        }
    }
}

impl Links {
    /// Brings the link `a`–`b` up with the contact's `params` (`None`: the
    /// run's defaults apply); `false` if it was already up.
    pub fn up(&mut self, a: u32, b: u32, params: Option<LinkParams>) -> bool {
        let l = self.map.entry(key(a, b).0).or_default();
        if l.up {
            return false;
        }
        l.up = true;
        l.params = params.map(|p| {
            let rates = if a < b {
                [p.rate_ab, p.rate_ba]
            } else {
                [p.rate_ba, p.rate_ab]
            };
            (rates, p.delay_us)
        });
        l.generation = l.generation.wrapping_add(1);
        true
    }

    /// Takes the link `a`–`b` down, returning the aborted transfers in
    /// queue order (low → high first); `None` if it was not up.
    pub fn down(&mut self, a: u32, b: u32) -> Option<Vec<Aborted>> {
        let (k, _) = key(a, b);
        let l = self.map.get_mut(&k).filter(|l| l.up)?;
        l.up = false;
        l.generation = l.generation.wrapping_add(1);
        let mut out = Vec::new();
        for (i, d) in l.dirs.iter_mut().enumerate() {
            let (from, to) = if i == 0 { (k.0, k.1) } else { (k.1, k.0) };
            out.extend(d.queue.drain(..).map(|p| (from, to, p.id)));
            d.busy_until_us = 0;
        }
        Some(out)
    }

    /// True while the link `a`–`b` is up.
    pub fn is_up(&self, a: u32, b: u32) -> bool {
        self.map.get(&key(a, b).0).is_some_and(|l| l.up)
    }

    /// Rate of `from → to` in the current contact (bytes/s, `None` =
    /// unlimited), or `default` if the contact gave none.
    pub fn rate(&self, from: u32, to: u32, default: Option<u64>) -> Option<u64> {
        let (k, i) = key(from, to);
        match self.map.get(&k).and_then(|l| l.params) {
            Some((rates, _)) => rates[i],
            None => default,
        }
    }

    /// One-way delay of the `from`–`to` link's current contact, µs, or
    /// `default` if the contact gave none.
    pub fn delay_us(&self, from: u32, to: u32, default: u64) -> u64 {
        self.map
            .get(&key(from, to).0)
            .and_then(|l| l.params)
            .map_or(default, |(_, d)| d)
    }

    /// Queues `p` from `from` to `to` at `now_us` (see [`Queued`]).
    pub fn enqueue(
        &mut self,
        from: u32,
        to: u32,
        now_us: u64,
        bandwidth: Option<u64>,
        p: Pending,
    ) -> Queued {
        let (k, i) = key(from, to);
        let Some(l) = self.map.get_mut(&k).filter(|l| l.up) else {
            return Queued::Down(p);
        };
        let d = &mut l.dirs[i];
        let start = now_us.max(d.busy_until_us);
        let finish_us = start.saturating_add(transfer_us(p.bytes.len(), bandwidth));
        d.busy_until_us = finish_us;
        if finish_us == now_us {
            return Queued::Done(p);
        }
        d.queue.push_back(p);
        Queued::Later {
            finish_us,
            generation: l.generation,
        }
    }

    /// The transfer at the head of `from → to` finished: returns it if the
    /// link is still up in generation `generation`.
    pub fn finish(&mut self, from: u32, to: u32, generation: u32) -> Option<Pending> {
        let (k, i) = key(from, to);
        let l = self.map.get_mut(&k)?;
        if !l.up || l.generation != generation {
            return None;
        }
        l.dirs[i].queue.pop_front()
    }
}
