//! A redb storage backend in memory that simulates power loss.
//!
//! Every `write`/`set_len` goes to a live image at once (the OS page cache)
//! and is remembered as *pending* until the next successful `sync_data`,
//! which copies the live image to the durable one. From the `fail_at`-th
//! mutating call on (writes, `set_len` and syncs are numbered from 1), every
//! mutating call fails: the power is off, so the commit in progress fails.
//! [`LossyBackend::crash_image`] then builds what a disk could hold after
//! the crash: the durable image plus none, all, or a seeded random subset
//! of the pending whole writes, applied in their order.
//!
//! Test support only: the image lives in one `Vec<u8>` per copy.
#![allow(dead_code)]

use rand::Rng;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// What survives of the writes made after the last successful sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// None of them (power loss with an empty disk cache).
    All,
    /// All of them (the process died, the page cache reached the disk).
    None,
    /// A random subset of whole writes (a disk that reorders its cache).
    Subset,
}

#[derive(Clone, Debug)]
enum Pending {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

#[derive(Debug, Default)]
struct Disk {
    live: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Pending>,
    /// Mutating calls seen so far (including failed ones).
    ops: u64,
    /// The first mutating call that fails.
    fail_at: Option<u64>,
    /// Syncs report success without making anything durable (a lying disk:
    /// used to check that the test's oracle notices lost commits).
    lying_sync: bool,
}

/// The backend; clones share one disk.
#[derive(Clone, Debug, Default)]
pub struct LossyBackend {
    disk: Arc<Mutex<Disk>>,
}

fn apply(img: &mut Vec<u8>, p: &Pending) {
    match p {
        Pending::Write(off, data) => {
            let off = *off as usize;
            if img.len() < off + data.len() {
                img.resize(off + data.len(), 0);
            }
            img[off..off + data.len()].copy_from_slice(data);
        }
        Pending::SetLen(len) => img.resize(*len as usize, 0),
    }
}

impl LossyBackend {
    /// An empty disk that never fails.
    pub fn new() -> LossyBackend {
        LossyBackend::default()
    }

    /// A disk holding `image` durably (what survived a crash).
    pub fn from_image(image: Vec<u8>) -> LossyBackend {
        let b = LossyBackend::default();
        {
            let mut d = b.lock();
            d.live = image.clone();
            d.durable = image;
        }
        b
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        // A panic while holding the lock is a test failure anyway.
        self.disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Power fails at the `n`-th mutating call from now on (1 = the next one).
    pub fn fail_after(&self, n: u64) {
        let mut d = self.lock();
        d.fail_at = Some(d.ops + n);
    }

    /// Makes every later sync a lie (reports success, persists nothing).
    pub fn lie_on_sync(&self) {
        self.lock().lying_sync = true;
    }

    /// Mutating calls seen so far.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// True once the power has failed.
    pub fn failed(&self) -> bool {
        let d = self.lock();
        d.fail_at.is_some_and(|f| d.ops >= f)
    }

    /// The bytes on disk after a crash now, with `loss` applied to the
    /// writes made since the last successful sync.
    pub fn crash_image(&self, loss: Loss, rng: &mut impl Rng) -> Vec<u8> {
        let d = self.lock();
        let mut img = d.durable.clone();
        for p in &d.pending {
            let keep = match loss {
                Loss::All => false,
                Loss::None => true,
                Loss::Subset => rng.random_bool(0.5),
            };
            if keep {
                apply(&mut img, p);
            }
        }
        img
    }

    /// Counts one mutating call; an error if the power is off.
    fn step(d: &mut Disk) -> io::Result<()> {
        d.ops += 1;
        match d.fail_at {
            Some(f) if d.ops >= f => Err(io::Error::other("simulated power loss")),
            _ => Ok(()),
        }
    }
}

impl redb::StorageBackend for LossyBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.lock().live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let d = self.lock();
        let start = offset as usize;
        let end = start.checked_add(out.len()).filter(|&e| e <= d.live.len());
        let Some(end) = end else {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        };
        out.copy_from_slice(&d.live[start..end]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut d = self.lock();
        LossyBackend::step(&mut d)?;
        let p = Pending::SetLen(len);
        apply(&mut d.live, &p);
        d.pending.push(p);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut d = self.lock();
        LossyBackend::step(&mut d)?;
        if !d.lying_sync {
            d.durable = d.live.clone();
            d.pending.clear();
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut d = self.lock();
        LossyBackend::step(&mut d)?;
        let p = Pending::Write(offset, data.to_vec());
        apply(&mut d.live, &p);
        d.pending.push(p);
        Ok(())
    }
}
