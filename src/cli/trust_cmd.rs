//! `spore trust`, `spore invite`, `spore join` (spec/trust.md).

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};
use spore::client::{Client, url_encode};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `spore trust` actions.
#[derive(Subcommand, Debug)]
pub enum TrustCmd {
    /// List the trusted keys (the default).
    List,
    /// Trust a node's public key (64 hex characters, from `spore trust self`).
    Add {
        /// The key.
        key: String,
        /// A name for it (then usable with `remove`).
        #[arg(long)]
        name: Option<String>,
    },
    /// Stop trusting a key, by key or name; in private mode its contact ends.
    Remove {
        /// A key or a name.
        target: String,
    },
    /// This node's own key and node ID, to give to other operators.
    #[command(name = "self")]
    Own,
}

/// `spore trust [ACTION]`.
pub fn trust(dir: &Path, action: Option<TrustCmd>, as_json: bool) -> anyhow::Result<()> {
    let c = Client::open(dir)?;
    let v = match action.unwrap_or(TrustCmd::List) {
        TrustCmd::List => c.get("/api/v1/trust")?,
        TrustCmd::Own => {
            let v = c.get("/api/v1/trust")?;
            if !as_json {
                println!("{}", v["self"]["key"].as_str().unwrap_or_default());
                println!("{}", v["self"]["node_id"].as_str().unwrap_or_default());
                return Ok(());
            }
            v["self"].clone()
        }
        TrustCmd::Add { key, name } => {
            c.post("/api/v1/trust", &json!({ "key": key, "name": name }))?
        }
        TrustCmd::Remove { target } => {
            c.delete(&format!("/api/v1/trust?target={}", url_encode(&target)))?
        }
    };
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if let Some(removed) = v["removed"].as_array() {
        for e in removed {
            println!("removed {}", entry_line(e));
        }
    } else {
        print_list(&v);
    }
    Ok(())
}

fn entry_line(e: &Value) -> String {
    let s = |k: &str| e[k].as_str().unwrap_or("-").to_owned();
    format!("{}  {:<16} {}", s("key"), s("name"), s("node_id"))
}

fn print_list(v: &Value) {
    if let Some(mode) = v["mode"].as_str() {
        println!("mode: {mode}");
    }
    let keys = v["keys"].as_array().map(Vec::as_slice).unwrap_or_default();
    if keys.is_empty() {
        println!("no trusted keys");
    }
    for e in keys {
        println!("{}", entry_line(e));
    }
}

/// `spore invite`.
pub fn invite(
    dir: &Path,
    ttl: Option<Duration>,
    addrs: &[SocketAddr],
    out: Option<PathBuf>,
    as_json: bool,
) -> anyhow::Result<()> {
    let c = Client::open(dir)?;
    let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    let body = json!({ "ttl_s": ttl.map(|d| d.as_secs()), "addrs": addrs });
    let v = c.post("/api/v1/invite", &body)?;
    let code = v["code"].as_str().unwrap_or_default();
    if let Some(path) = &out {
        write_private(path, code)?;
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{code}");
        if v["mode"] == "open" {
            eprintln!("note: this node is in open mode: any node may connect anyway");
        }
    }
    Ok(())
}

/// Writes the code to `path` with mode 0600 (it is a secret).
fn write_private(path: &Path, code: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(f, "{code}")?;
    Ok(())
}

/// `spore join CODE` (or `@FILE`).
pub fn join(dir: &Path, code: &str, as_json: bool) -> anyhow::Result<()> {
    let code = match code.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the invite code file {file}"))?,
        None => code.to_owned(),
    };
    let c = Client::open(dir)?;
    let v = c.post("/api/v1/join", &json!({ "code": code.trim() }))?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "joined {} at {} (key {})",
            v["inviter"].as_str().unwrap_or("?"),
            v["addr"].as_str().unwrap_or("?"),
            v["key"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}
