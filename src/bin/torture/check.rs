//! The end-of-run check: compares C's inbox and C's status with the ledger.
//!
//! Per acknowledged file: exactly one copy in C's inbox with the right
//! SHA-256, its manifest bundle delivered exactly once in C's status, and a
//! file record with a path. Per unacknowledged attempt: at most one copy
//! (it may or may not have been stored before A was killed). Anything else
//! in the inbox is "extra". Leftover `.spore-partial-*` temp files are
//! counted and reported (not a loss or a duplicate).

use crate::workload::Attempt;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Prefix of the temporary files of an interrupted reassembly.
const PARTIAL_PREFIX: &str = ".spore-partial-";

/// Outcome of the check, part of the summary.
#[derive(Debug, Default, Serialize)]
pub struct Verdict {
    /// Acknowledged files found exactly once with the right content.
    pub delivered: usize,
    /// Unacknowledged attempts that were delivered anyway (allowed).
    pub unacked_delivered: usize,
    /// Acknowledged files missing from C's inbox (or only with wrong
    /// content) whose manifest bundle is not held at A or B either.
    pub lost: Vec<String>,
    /// Acknowledged files not (yet) at C whose manifest bundle is still
    /// held (stored or in flight) at A or B: not lost, but not drained.
    pub undelivered_held: Vec<String>,
    /// Files present more than once (name, copies).
    pub duplicated: Vec<(String, usize)>,
    /// Inbox entries with a right name but wrong content.
    pub corrupt: Vec<String>,
    /// Inbox entries that match no attempt.
    pub extra: Vec<String>,
    /// Problems seen in C's status (manifest delivered ≠ once, counters).
    pub status_problems: Vec<String>,
    /// Leftover temporary files of interrupted reassemblies.
    pub stale_partials: usize,
}

impl Verdict {
    /// True if the promise held: nothing lost, duplicated, corrupt, extra,
    /// and C's status agrees.
    pub fn ok(&self) -> bool {
        self.lost.is_empty()
            && self.duplicated.is_empty()
            && self.corrupt.is_empty()
            && self.extra.is_empty()
            && self.status_problems.is_empty()
            && self.undelivered_held.is_empty()
    }
}

/// One inbox entry: file name and content SHA-256 (hex).
type Entry = (String, String);

/// Reads C's inbox: regular files with their SHA-256, and the number of
/// leftover partial files.
///
/// # Errors
/// I/O errors reading the directory or a file.
pub fn read_inbox(inbox: &Path) -> anyhow::Result<(Vec<Entry>, usize)> {
    let mut entries = Vec::new();
    let mut partials = 0;
    let Ok(rd) = std::fs::read_dir(inbox) else {
        return Ok((entries, 0)); // no inbox yet: nothing delivered
    };
    for e in rd {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(PARTIAL_PREFIX) {
            partials += 1;
            continue;
        }
        let bytes = std::fs::read(e.path())?;
        entries.push((name, hex::encode(Sha256::digest(&bytes))));
    }
    entries.sort();
    Ok((entries, partials))
}

/// `stem (N).ext` -> `stem.ext` (the node's no-clobber renaming); other
/// names unchanged.
fn base_name(name: &str) -> String {
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if dot > 0 => (&name[..dot], &name[dot..]),
        _ => (name, ""),
    };
    if let Some(open) = stem.rfind(" (") {
        let num = &stem[open + 2..];
        if let Some(n) = num.strip_suffix(')') {
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                return format!("{}{ext}", &stem[..open]);
            }
        }
    }
    name.to_owned()
}

/// Manifest CIDs held (stored or in flight) in the given statuses.
fn held_manifests(statuses: &[Value]) -> BTreeSet<&str> {
    statuses
        .iter()
        .flat_map(|s| s["bundles"].as_array().into_iter().flatten())
        .filter(|b| {
            b["kind"] == "manifest" && (b["state"] == "stored" || b["state"] == "in_flight")
        })
        .filter_map(|b| b["cid"].as_str())
        .collect()
}

/// Compares the inbox with the ledger, C's status, and (for files not at
/// C) the statuses of A and B in `relays`.
pub fn verify(
    ledger: &[Attempt],
    inbox: &[Entry],
    partials: usize,
    c_status: &Value,
    relays: &[Value],
) -> Verdict {
    let held = held_manifests(relays);
    let mut v = Verdict {
        stale_partials: partials,
        ..Verdict::default()
    };
    let mut by_base: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
    for e in inbox {
        by_base.entry(base_name(&e.0)).or_default().push(e);
    }
    for a in ledger {
        let copies = by_base.remove(&a.name).unwrap_or_default();
        let good = copies.iter().filter(|e| e.1 == a.sha256).count();
        for bad in copies.iter().filter(|e| e.1 != a.sha256) {
            v.corrupt.push(bad.0.clone());
        }
        if copies.len() > 1 {
            v.duplicated.push((a.name.clone(), copies.len()));
        }
        match (a.acked(), good) {
            (true, 0) if a.manifest_cid.as_deref().is_some_and(|c| held.contains(c)) => {
                v.undelivered_held.push(a.name.clone())
            }
            (true, 0) => v.lost.push(a.name.clone()),
            (true, _) => v.delivered += 1,
            (false, 0) => {}
            (false, _) => v.unacked_delivered += 1,
        }
    }
    v.extra = by_base
        .into_values()
        .flatten()
        .map(|e| e.0.clone())
        .collect();
    check_status(ledger, inbox.len(), c_status, &mut v);
    v
}

/// C's status must show each acknowledged manifest delivered exactly once
/// and written to a path, and `files_delivered` equal to the inbox size.
fn check_status(ledger: &[Attempt], inbox_files: usize, status: &Value, v: &mut Verdict) {
    let mut manifests: BTreeMap<&str, usize> = BTreeMap::new();
    for b in status["bundles"].as_array().into_iter().flatten() {
        if b["kind"] == "manifest" && b["state"] == "delivered" {
            if let Some(cid) = b["cid"].as_str() {
                *manifests.entry(cid).or_default() += 1;
            }
        }
    }
    let mut written: BTreeMap<&str, usize> = BTreeMap::new();
    for f in status["files"].as_array().into_iter().flatten() {
        if let (Some(cid), Some(_)) = (f["cid"].as_str(), f["path"].as_str()) {
            *written.entry(cid).or_default() += 1;
        }
    }
    for a in ledger
        .iter()
        .filter(|a| !v.undelivered_held.contains(&a.name))
    {
        let Some(cid) = a.manifest_cid.as_deref() else {
            continue;
        };
        let delivered = manifests.get(cid).copied().unwrap_or(0);
        if delivered != 1 {
            let msg = format!("{}: manifest {cid} delivered {delivered} times", a.name);
            v.status_problems.push(msg);
        }
        if written.get(cid).copied().unwrap_or(0) != 1 {
            let msg = format!("{}: no single written file record for {cid}", a.name);
            v.status_problems.push(msg);
        }
    }
    let counter = status["counters"]["files_delivered"].as_u64().unwrap_or(0);
    if counter != inbox_files as u64 {
        v.status_problems.push(format!(
            "files_delivered counter is {counter}, inbox holds {inbox_files} files"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(name: &str, sha: &str, acked: bool) -> Attempt {
        Attempt {
            name: name.into(),
            size_bytes: 1,
            sha256: sha.into(),
            manifest_cid: acked.then(|| format!("cid-{name}")),
            error: None,
        }
    }

    fn status_for(cids: &[&str]) -> Value {
        let bundles: Vec<Value> = cids
            .iter()
            .map(|c| serde_json::json!({"kind": "manifest", "state": "delivered", "cid": c}))
            .collect();
        let files: Vec<Value> = cids
            .iter()
            .map(|c| serde_json::json!({"cid": c, "path": "/x"}))
            .collect();
        serde_json::json!({"bundles": bundles, "files": files,
            "counters": {"files_delivered": cids.len()}})
    }

    #[test]
    fn base_names() {
        assert_eq!(base_name("t1-0001 (2).bin"), "t1-0001.bin");
        assert_eq!(base_name("t1-0001.bin"), "t1-0001.bin");
        assert_eq!(base_name("x (a).bin"), "x (a).bin");
    }

    #[test]
    fn finds_loss_duplicate_and_extra() {
        let ledger = [attempt("a.bin", "1", true), attempt("b.bin", "2", true)];
        let inbox = [
            ("a.bin".to_owned(), "1".to_owned()),
            ("a (1).bin".to_owned(), "1".to_owned()),
            ("z.bin".to_owned(), "9".to_owned()),
        ];
        let v = verify(&ledger, &inbox, 0, &status_for(&["cid-a.bin"]), &[]);
        assert_eq!(v.lost, ["b.bin"]);
        assert_eq!(v.duplicated, [("a.bin".to_owned(), 2)]);
        assert_eq!(v.extra, ["z.bin"]);
        assert!(!v.ok());
    }

    #[test]
    fn a_file_still_held_at_a_relay_is_not_lost() {
        let ledger = [attempt("a.bin", "1", true)];
        let mut c = status_for(&[]);
        c["counters"]["files_delivered"] = 0.into();
        let b = serde_json::json!({"bundles": [
            {"kind": "manifest", "state": "in_flight", "cid": "cid-a.bin"}]});
        let v = verify(&ledger, &[], 0, &c, &[b]);
        assert!(v.lost.is_empty(), "{v:?}");
        assert_eq!(v.undelivered_held, ["a.bin"]);
        assert!(v.status_problems.is_empty(), "{v:?}");
        assert!(!v.ok(), "not drained is still a failed run");
    }

    #[test]
    fn clean_run_passes_and_unacked_may_arrive() {
        let ledger = [attempt("a.bin", "1", true), attempt("b.bin", "2", false)];
        let inbox = [
            ("a.bin".to_owned(), "1".to_owned()),
            ("b.bin".to_owned(), "2".to_owned()),
        ];
        let mut status = status_for(&["cid-a.bin"]);
        status["counters"]["files_delivered"] = 2.into();
        let v = verify(&ledger, &inbox, 1, &status, &[]);
        assert!(v.ok(), "{v:?}");
        assert_eq!(
            (v.delivered, v.unacked_delivered, v.stale_partials),
            (1, 1, 1)
        );
    }
}
