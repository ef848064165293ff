//! The issue-7 link-chaos campaign: a file of `--mib` MiB goes A -> B -> C
//! through two chaos relays (2 % loss, 1–3 ms delay, 1 % reordered, 1 %
//! duplicated, flaps every 0.5–5 s) and is verified by SHA-256 at C.
//!
//! ```text
//! cargo build --release && cargo run --release --example chaos_transfer -- --mib 1024
//! ```
//! Prints progress every 10 s on stderr and a JSON report on stdout; exit
//! status 1 if the file did not arrive intact in time.

use anyhow::Context;
use clap::Parser;
use spore::chaos::ChaosConfig;
use spore::chaos::transfer::{self, TransferConfig};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
struct Args {
    /// File size, MiB.
    #[arg(long, default_value_t = 1024)]
    mib: u64,
    /// Seed of the file and of the relays.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Loss probability per datagram and relay pass.
    #[arg(long, default_value_t = 0.02)]
    drop: f64,
    /// No link flaps (to compare).
    #[arg(long)]
    no_flaps: bool,
    /// A clean link: no loss, delay, reordering, duplicates or flaps (to compare).
    #[arg(long)]
    clean: bool,
    /// Give up after this long, e.g. 10m.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
    timeout: Duration,
    /// The spore binary [default: next to this example's directory].
    #[arg(long)]
    exe: Option<PathBuf>,
    /// Scratch directory [default: a temporary one, removed at the end].
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let exe = match a.exe {
        Some(e) => e,
        None => std::env::current_exe()?
            .parent()
            .and_then(|p| p.parent())
            .context("no parent directory of the example")?
            .join("spore"),
    };
    anyhow::ensure!(
        exe.exists(),
        "{} missing: cargo build --release first",
        exe.display()
    );
    let tmp = tempfile::tempdir()?;
    let root = a.dir.unwrap_or_else(|| tmp.path().to_path_buf());
    let mut link = ChaosConfig::issue7(a.seed);
    link.drop = a.drop;
    if a.no_flaps {
        link.flaps = None;
    }
    if a.clean {
        link = ChaosConfig::clean();
    }
    eprintln!("seed {} link {link:?}", a.seed);
    let cfg = TransferConfig {
        exe,
        root,
        size_bytes: a.mib << 20,
        seed: a.seed,
        link,
        timeout: a.timeout,
        node_flags: vec![],
    };
    let r = transfer::run(&cfg, true)?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    anyhow::ensure!(
        r.verified && r.inbox_files == 1,
        "file corrupt or duplicated"
    );
    Ok(())
}
