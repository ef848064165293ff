//! `spore query`: questions to the node about the mesh (spec/assets.md).

use clap::Subcommand;
use serde_json::Value;
use spore::client::{Client, url_encode};
use std::path::Path;

/// `spore query` subcommands.
#[derive(Subcommand, Debug)]
pub enum QueryCmd {
    /// Which known nodes hold a file (manifest CID) or a chunk (chunk CID),
    /// and how this node knows: its own store, or asset adverts exchanged
    /// on contact (with the peer that told us and when).
    Asset {
        /// The CID (text form, e.g. bafk…).
        cid: String,
        /// Print JSON (`cid`, `holders`).
        #[arg(long)]
        json: bool,
    },
}

/// Runs `spore query …` against the node in `dir`.
pub fn run(dir: &Path, cmd: QueryCmd) -> anyhow::Result<()> {
    match cmd {
        QueryCmd::Asset { cid, json } => {
            let c = Client::open(dir)?;
            let v = c.get(&format!("/api/v1/query/asset?cid={}", url_encode(&cid)))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_holders(&v);
            }
            Ok(())
        }
    }
}

/// One line per holder: `NODE  HOW  (via X, seen N s ago, H hops) [file M]`.
fn print_holders(v: &Value) {
    let holders = v["holders"].as_array().map_or(&[][..], Vec::as_slice);
    if holders.is_empty() {
        println!("no known holder of {}", v["cid"].as_str().unwrap_or("?"));
        return;
    }
    for h in holders {
        let mut line = format!(
            "{:<28} {}",
            h["node"].as_str().unwrap_or("?"),
            h["how"].as_str().unwrap_or("?")
        );
        if let Some(via) = h["via"].as_str() {
            line.push_str(&format!(
                " (via {via}, seen {} s ago, {} hops)",
                h["age_s"].as_u64().unwrap_or(0),
                h["hops"].as_u64().unwrap_or(0)
            ));
        }
        if let Some(m) = h["manifest"].as_str() {
            line.push_str(&format!(" [file {m}]"));
        }
        println!("{line}");
    }
}
