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

/// `spore job submit` arguments.
#[derive(clap::Args, Debug)]
pub struct SubmitArgs {
    /// Service name, e.g. `wc`.
    #[arg(long)]
    service: String,
    /// Interactive: only to a peer in contact now with a low RTT.
    #[arg(long)]
    realtime: bool,
    /// The node that runs it, e.g. dtn://base/ [default: the best known
    /// node advertising the service].
    #[arg(long)]
    to: Option<Eid>,
    /// Input file, or `-` for stdin [default: empty input].
    #[arg(long, conflicts_with = "input_cid")]
    input: Option<PathBuf>,
    /// Input already sent to the executing node with `spore send`: the
    /// manifest CID it printed (the whole file) or a chunk CID. Repeatable;
    /// the input is their bytes in order (at most 64 MiB). Use it for
    /// inputs over the 16 MiB job limit or to reuse a file in many jobs.
    #[arg(long, value_name = "CID")]
    input_cid: Vec<String>,
    /// Where the result goes (batch only, not with --wait: the result does
    /// not come here), e.g. dtn://c/ (its job-results endpoint; read it
    /// there with `spore job result ID`) [default: this node].
    #[arg(long, value_name = "EID", conflicts_with_all = ["wait", "realtime"])]
    result_to: Option<Eid>,
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
}

/// `spore job` subcommands.
#[derive(Subcommand, Debug)]
pub enum JobCmd {
    /// Submit a job: its bundle is stored here and travels to the node.
    /// Prints the job ID (the job bundle's ID).
    Submit(Box<SubmitArgs>),
    /// Where a job is: waiting for its result (its bundle's state and
    /// custodian here), done or failed (executor, run time, output size,
    /// error).
    Status {
        /// Job ID (SOURCE#TIME.SEQ).
        id: String,
        /// One JSON object (`job`, `state`, and `executor`, `status`,
        /// `run_ms`, `output_bytes` or `bundle_state`, `custodian`).
        #[arg(long)]
        json: bool,
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
        JobCmd::Submit(a) => submit(&a),
        JobCmd::Status { id, json, dir } => {
            let c = Client::open(&dir.path()?)?;
            let v = c.get(&format!("/api/v1/jobs/status?id={}", enc(&id)))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_status(&v);
            }
            Ok(())
        }
        JobCmd::Result { id, dir } => {
            let c = Client::open(&dir.path()?)?;
            let v = c.get(&format!("/api/v1/jobs/result?id={}", enc(&id)))?;
            print_result(&v)
        }
    }
}

/// `spore job status` for people: one `field: value` line each.
fn print_status(v: &serde_json::Value) {
    let text = |k: &str| match &v[k] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    println!("job:       {}", text("job"));
    println!("state:     {}", text("state"));
    if v.get("executor").is_some() {
        println!("executor:  {}", text("executor"));
        println!("run:       {} ms", text("run_ms"));
        println!("output:    {} bytes", text("output_bytes"));
        if v["status"] != "ok" {
            println!("error:     {}", text("status"));
        }
    } else {
        println!("bundle:    {}", text("bundle_state"));
        println!("custodian: {}", text("custodian"));
    }
}

/// The `POST /api/v1/jobs` path and query for `a`.
fn submit_query(a: &SubmitArgs) -> String {
    let mut q = format!("/api/v1/jobs?service={}", enc(&a.service));
    if a.realtime {
        q.push_str("&class=realtime");
    }
    if let Some(t) = &a.to {
        q.push_str(&format!("&to={}", enc(&t.to_string())));
    }
    if !a.input_cid.is_empty() {
        q.push_str(&format!("&input_cids={}", enc(&a.input_cid.join(","))));
    }
    if let Some(t) = &a.result_to {
        q.push_str(&format!("&result_to={}", enc(&t.to_string())));
    }
    if let Some(d) = a.deadline {
        let at = spore::node::dtn_now().0 + d.as_millis() as u64;
        q.push_str(&format!("&deadline_ms={at}"));
    }
    q
}

fn submit(a: &SubmitArgs) -> anyhow::Result<()> {
    let c = Client::open(&a.dir.path()?)?;
    let body = read_input(a.input.as_ref())?;
    let mut q = submit_query(a);
    if a.realtime && a.wait {
        // Output is printed as it comes (spec/jobs.md §7.1).
        q.push_str("&stream=true");
        c.post_bytes_streaming(&q, &body, &mut std::io::stdout().lock())?;
        return Ok(());
    }
    let v = c.post_bytes(&q, &body)?;
    if a.realtime {
        return print_result(&v);
    }
    let job = v["job"].as_str().unwrap_or_default().to_owned();
    if !a.wait {
        println!("{job}");
        return Ok(());
    }
    eprintln!("job {job} sent to {}", v["to"].as_str().unwrap_or("?"));
    wait_result(&c, &job, a.wait_timeout)
}

fn read_input(input: Option<&PathBuf>) -> anyhow::Result<Vec<u8>> {
    match input {
        None => Ok(Vec::new()),
        Some(p) if p.as_os_str() == "-" => {
            let mut b = Vec::new();
            std::io::stdin().read_to_end(&mut b)?;
            Ok(b)
        }
        Some(p) => {
            let len = std::fs::metadata(p).map_or(0, |m| m.len());
            if len > spore::jobs::MAX_JOB_BYTES as u64 {
                bail!(
                    "{} has {len} bytes, over the {} bytes of a job; send it first \
                     (spore send {} --to dtn://NODE/files) and pass the manifest CID it \
                     prints with --input-cid",
                    p.display(),
                    spore::jobs::MAX_JOB_BYTES,
                    p.display()
                );
            }
            std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
        }
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
        if c["services"].as_array().is_none_or(Vec::is_empty) {
            println!("    no services");
        }
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
