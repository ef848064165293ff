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
        /// Follow progress until nothing is in flight: a progress bar on a
        /// terminal, one plain line per second otherwise.
        #[arg(long, conflicts_with = "json")]
        watch: bool,
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
        SyncCmd::Status { watch: true, .. } => watch(&c)?,
        SyncCmd::Status { json, .. } => {
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

/// (chunks total, handed on, in flight, ETA s) over every folder.
fn totals(v: &Value) -> (u64, u64, u64, Option<f64>) {
    let empty = Vec::new();
    let folders = v["folders"].as_array().unwrap_or(&empty);
    let sum = |k: &str| folders.iter().map(|f| f[k].as_u64().unwrap_or(0)).sum();
    (
        sum("chunks_total"),
        sum("chunks_handed_on"),
        sum("chunks_in_flight"),
        v["eta_s"].as_f64(),
    )
}

/// `spore sync status --watch`.
fn watch(c: &Client) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let tty = std::io::stdout().is_terminal();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{bar:40} {pos}/{len} chunks handed on, {msg}",
    )?);
    if !tty {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    loop {
        let (total, handed, flight, eta) = totals(&c.get("/api/v1/sync/status")?);
        let eta = eta.map_or("ETA unknown".to_owned(), |s| format!("ETA {s:.0} s"));
        let msg = format!("{flight} in flight, {eta}");
        if tty {
            bar.set_length(total);
            bar.set_position(handed);
            bar.set_message(msg);
        } else {
            println!("{handed}/{total} chunks handed on, {msg}");
        }
        if flight == 0 {
            bar.finish();
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
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
