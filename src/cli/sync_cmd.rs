//! `spore sync`: register outgoing folders and accept rules, show progress
//! (spec/sync.md).

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};
use spore::bundle::Eid;
use spore::client::Client;
use std::path::{Path, PathBuf};

/// `spore sync` subcommands.
#[derive(Subcommand, Debug)]
pub enum SyncCmd {
    /// Register an outgoing folder: watched, every new or changed file is
    /// sent (persisted in DATA_DIR/sync.json).
    Add {
        /// The folder to watch.
        dir: PathBuf,
        /// Destination endpoint, e.g. dtn://base/files.
        #[arg(long)]
        to: Eid,
        /// Folder name sent with each file [default: the folder's base name].
        #[arg(long)]
        name: Option<String>,
        /// Send deletions as tombstones (the receiver then deletes its copy
        /// unless it changed it locally).
        #[arg(long)]
        propagate_deletes: bool,
    },
    /// Choose where folder content from a source lands: folder F goes to
    /// INTO/F/ (without a rule: the inbox).
    Accept {
        /// Source node ID or prefix, e.g. dtn://field/.
        #[arg(long)]
        from: String,
        /// Directory to write into (created if missing).
        #[arg(long)]
        into: PathBuf,
    },
    /// Per folder and per file: chunks total / handed on / in flight,
    /// bytes, measured rate and estimated completion.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `spore sync` subcommand against the node in `dir`.
pub fn run(dir: &Path, cmd: SyncCmd) -> anyhow::Result<()> {
    let c = Client::open(dir)?;
    match cmd {
        SyncCmd::Add {
            dir,
            to,
            name,
            propagate_deletes,
        } => {
            let dir = std::fs::canonicalize(&dir)
                .with_context(|| format!("cannot open {}", dir.display()))?;
            let body = json!({"dir": dir, "to": to.to_string(), "name": name,
                "propagate_deletes": propagate_deletes});
            c.post("/api/v1/sync/folders", &body)?;
            println!("syncing {} to {to}", dir.display());
        }
        SyncCmd::Accept { from, into } => {
            let into = std::path::absolute(&into)?;
            c.post("/api/v1/sync/accept", &json!({"from": from, "into": into}))?;
            println!("folders from {from} land in {}", into.display());
        }
        SyncCmd::Status { json } => {
            let v = c.get("/api/v1/sync/status")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_status(&v);
            }
        }
    }
    Ok(())
}

fn print_status(v: &Value) {
    let empty = Vec::new();
    for f in v["folders"].as_array().unwrap_or(&empty) {
        println!(
            "{} ({}) -> {}: {} files, {} bytes, chunks {} total / {} handed on / {} in flight",
            f["name"].as_str().unwrap_or("?"),
            f["dir"].as_str().unwrap_or("?"),
            f["to"].as_str().unwrap_or("?"),
            f["files_total"],
            f["bytes"],
            f["chunks_total"],
            f["chunks_handed_on"],
            f["chunks_in_flight"],
        );
        for file in f["files"].as_array().unwrap_or(&empty) {
            if file["chunks_in_flight"].as_u64().unwrap_or(0) > 0 {
                println!(
                    "  {}: {}/{} chunks handed on, {} in flight",
                    file["path"].as_str().unwrap_or("?"),
                    file["chunks_handed_on"],
                    file["chunks_total"],
                    file["chunks_in_flight"],
                );
            }
        }
    }
    for a in v["accept"].as_array().unwrap_or(&empty) {
        println!("accept from {} into {}", a["from"], a["into"]);
    }
    match v["eta_s"].as_f64() {
        Some(s) => println!("estimated completion in {s:.0} s"),
        None => println!("estimated completion: unknown (no rate measured yet; run again)"),
    }
}
