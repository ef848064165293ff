//! `spore job`: submit a job to a node offering a service, follow it, print
//! its result (spec/jobs.md §6).

use super::DataDir;
use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::Value;
use spore::bundle::Eid;
use spore::client::{Client, url_encode as enc};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `spore job` subcommands.
#[derive(Subcommand, Debug)]
pub enum JobCmd {
    /// Submit a job: its bundle is stored here and travels to the node.
    /// Prints the job ID (the job bundle's ID).
    Submit {
        /// Service name, e.g. `wc`.
        #[arg(long)]
        service: String,
        /// Interactive: only to a peer in contact now with a low RTT.
        #[arg(long)]
        realtime: bool,
        /// The node that runs it, e.g. dtn://base/.
        #[arg(long)]
        to: Option<Eid>,
        /// Input file, or `-` for stdin [default: empty input].
        #[arg(long)]
        input: Option<PathBuf>,
        /// Run only before this long from now, e.g. 2h.
        #[arg(long, value_parser = humantime::parse_duration)]
        deadline: Option<Duration>,
        /// Wait for the result and print its output (exit 1 if the job
        /// failed); with --realtime the output is printed as it comes.
        #[arg(long)]
        wait: bool,
        /// Longest wait with --wait.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
        wait_timeout: Duration,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Where a job is: waiting (its bundle's state), done or failed.
    Status {
        /// Job ID (SOURCE#TIME.SEQ).
        id: String,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Print a job's output (exit 1 with the reason if it failed).
    Result {
        /// Job ID.
        id: String,
        #[command(flatten)]
        dir: DataDir,
    },
}

/// Runs a `spore job` command.
///
/// # Errors
/// API errors, unreadable input, a failed job.
pub fn run(cmd: JobCmd) -> anyhow::Result<()> {
    match cmd {
        JobCmd::Submit {
            service,
            realtime,
            to,
            input,
            deadline,
            wait,
            wait_timeout,
            dir,
        } => {
            let c = Client::open(&dir.path()?)?;
            let body = read_input(input.as_ref())?;
            let mut q = format!("/api/v1/jobs?service={}", enc(&service));
            if realtime {
                q.push_str("&class=realtime");
            }
            if let Some(t) = &to {
                q.push_str(&format!("&to={}", enc(&t.to_string())));
            }
            if let Some(d) = deadline {
                let at = spore::node::dtn_now().0 + d.as_millis() as u64;
                q.push_str(&format!("&deadline_ms={at}"));
            }
            if realtime && wait {
                // Output is printed as it comes (spec/jobs.md §7.1).
                q.push_str("&stream=true");
                c.post_bytes_streaming(&q, &body, &mut std::io::stdout().lock())?;
                return Ok(());
            }
            let v = c.post_bytes(&q, &body)?;
            if realtime {
                return print_result(&v);
            }
            let job = v["job"].as_str().unwrap_or_default().to_owned();
            if !wait {
                println!("{job}");
                return Ok(());
            }
            eprintln!("job {job} sent to {}", v["to"].as_str().unwrap_or("?"));
            wait_result(&c, &job, wait_timeout)
        }
        JobCmd::Status { id, dir } => {
            let c = Client::open(&dir.path()?)?;
            let v = c.get(&format!("/api/v1/jobs/status?id={}", enc(&id)))?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        JobCmd::Result { id, dir } => {
            let c = Client::open(&dir.path()?)?;
            let v = c.get(&format!("/api/v1/jobs/result?id={}", enc(&id)))?;
            print_result(&v)
        }
    }
}

fn read_input(input: Option<&PathBuf>) -> anyhow::Result<Vec<u8>> {
    match input {
        None => Ok(Vec::new()),
        Some(p) if p.as_os_str() == "-" => {
            let mut b = Vec::new();
            std::io::stdin().read_to_end(&mut b)?;
            Ok(b)
        }
        Some(p) => std::fs::read(p).with_context(|| format!("cannot read {}", p.display())),
    }
}

fn wait_result(c: &Client, job: &str, timeout: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + timeout;
    let path = format!("/api/v1/jobs/result?id={}", enc(job));
    loop {
        if let Ok(v) = c.get(&path) {
            return print_result(&v);
        }
        if Instant::now() > until {
            bail!(
                "no result for job {job} after {timeout:?} (it may still come: spore job result {job})"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn print_result(v: &Value) -> anyhow::Result<()> {
    let out = hex::decode(v["output_hex"].as_str().unwrap_or_default())?;
    std::io::stdout().write_all(&out)?;
    if v["ok"].as_bool() == Some(true) {
        return Ok(());
    }
    bail!(
        "job failed on {}: {}: {}",
        v["executor"].as_str().unwrap_or("?"),
        v["kind"].as_str().unwrap_or("?"),
        v["detail"].as_str().unwrap_or("")
    )
}

/// Prints the services and hardware each peer advertised (`spore peers`).
pub fn show_capabilities(v: &Value) {
    let Some(caps) = v["capabilities"].as_object() else {
        return;
    };
    if caps.is_empty() {
        return;
    }
    println!("capabilities:");
    for (node, c) in caps {
        let hw = &c["hardware"];
        let gib = hw["memory_bytes"].as_u64().unwrap_or(0) as f64 / f64::from(1u32 << 30);
        let gpu = if hw["gpu"].as_bool() == Some(true) {
            "gpu"
        } else {
            "no gpu"
        };
        println!("  {node}: {} cores, {gib:.1} GiB, {gpu}", hw["cores"]);
        for s in c["services"].as_array().into_iter().flatten() {
            let models: Vec<&str> = s["models"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            println!(
                "    {} ({}): {} free slots, {} queued{}",
                s["name"].as_str().unwrap_or("?"),
                s["kind"].as_str().unwrap_or("?"),
                s["free_slots"],
                s["queue"],
                if models.is_empty() {
                    String::new()
                } else {
                    format!(", models {}", models.join(" "))
                }
            );
        }
    }
}
