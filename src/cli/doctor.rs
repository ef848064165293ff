//! `spore doctor`: verify a stopped node's store against the invariants of
//! spec/store.md and, with `--repair`, fix what is safe to fix
//! (see [`spore::store::check`]).

use anyhow::{Context, bail};
use spore::store::check::{self, Report};
use spore::store::{Store, StoreError};
use std::path::Path;

/// Checks (or repairs) the store in `dir`. Prints one line per problem (or
/// the report as JSON with `json`).
///
/// # Errors
/// If the store is missing, in use by a running node, or unreadable, and
/// if any problem is left (so that the process exits with status 1).
pub fn run(dir: &Path, repair: bool, json: bool) -> anyhow::Result<()> {
    let path = dir.join("store.redb");
    if !path.exists() {
        bail!("no store at {} (is --data-dir right?)", path.display());
    }
    let store = match Store::open(&path) {
        Ok(s) => s,
        Err(StoreError::Db(redb::Error::DatabaseAlreadyOpen)) => bail!(
            "the store {} is in use: stop the node first (spore doctor needs it alone)",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    let report = if repair {
        check::repair(&store)
    } else {
        check::check(&store)
    }
    .with_context(|| format!("cannot scan {}", path.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&path, &report);
    }
    if !report.is_clean() {
        bail!("{} problem(s) in {}", report.problems.len(), path.display());
    }
    Ok(())
}

fn print_text(path: &Path, r: &Report) {
    for p in &r.repaired {
        println!("repaired: {p}");
    }
    for p in &r.problems {
        let hint = if p.repairable() {
            " (--repair fixes it)"
        } else {
            ""
        };
        println!("problem: {p}{hint}");
    }
    let s = &r.scanned;
    println!(
        "{}: {} records, {} held, {} expiry entries, {} chunks, {} inbox entries; {}",
        path.display(),
        s.records,
        s.held,
        s.expiry,
        s.chunks,
        s.inbox,
        if r.is_clean() {
            "ok".to_owned()
        } else {
            format!("{} problem(s)", r.problems.len())
        }
    );
}
