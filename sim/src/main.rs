//! `spore-sim`: generate traces, run the simulator, plot runs.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use spore::routing::Policy;
use spore_sim::generator::{self as generate, PoissonParams, RwpParams};
use spore_sim::run::{self, RunParams};
use spore_sim::trace;
use std::path::PathBuf;

/// mimalloc, as in the `spore` binary. The simulator allocates and frees
/// many small objects per event (bundle records, summaries, redb pages):
/// with glibc's malloc, allocation was ≈ 14 % of a run's profile. On the
/// 100-node 3-day spray-and-wait run of `scripts/sim-bench.sh`: 49–53 k →
/// 59–61 k events/s (three interleaved runs each; same results), peak RSS
/// 175 → 210 MiB; `main` turns mimalloc's transparent huge pages off
/// ([`spore::thp`]), which keeps it at 186 MiB at the same speed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "spore-sim",
    version,
    about = "Deterministic simulator of spore agents"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print a generated trace (ONE `CONN` events) on stdout.
    Gen {
        #[command(subcommand)]
        kind: GenKind,
    },
    /// Run a trace with one routing policy and print the report.
    Run(Box<RunArgs>),
    /// Plot delivery ratio over time and latency CDFs of `--series` files.
    Plot {
        /// Series files written by `run --series`.
        #[arg(long, num_args = 1.., required = true)]
        input: Vec<PathBuf>,
        /// Output directory (created).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum GenKind {
    /// Every pair meets as a Poisson process of rate λ.
    Poisson {
        #[arg(long)]
        nodes: u32,
        /// λ, meetings per second per pair.
        #[arg(long)]
        rate: f64,
        /// Trace length, s.
        #[arg(long)]
        duration: f64,
        /// Contact length, s (default: instant contacts).
        #[arg(long, default_value_t = 0.0)]
        contact_secs: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Random waypoint on a square; contact = within range.
    Rwp {
        #[arg(long)]
        nodes: u32,
        /// Side of the square, m.
        #[arg(long)]
        grid: f64,
        /// Radio range, m.
        #[arg(long)]
        range: f64,
        /// Speed range MIN-MAX, m/s.
        #[arg(long, default_value = "0.5-1.5")]
        speed: String,
        /// Longest pause at a waypoint, s.
        #[arg(long, default_value_t = 0.0)]
        pause: f64,
        /// Trace length, s.
        #[arg(long)]
        duration: f64,
        /// Sampling step, s.
        #[arg(long, default_value_t = 1.0)]
        step: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Connectivity trace (ONE `CONN` events).
    #[arg(long)]
    trace: PathBuf,
    /// direct, epidemic, spray-and-wait, prophet, spore or cgr.
    #[arg(long)]
    router: String,
    /// Copies L for spray-and-wait and spore.
    #[arg(long)]
    copies: Option<u32>,
    /// Bandwidth per link direction: `unlimited` or bytes/s (contact-plan
    /// traces give each contact its own rate and delay, which win).
    #[arg(long, default_value = "unlimited")]
    bandwidth: String,
    /// Buffer per node: `unlimited` or bytes.
    #[arg(long, default_value = "unlimited")]
    buffer: String,
    /// One-way link delay, ms (contact plans: each contact's own).
    #[arg(long, default_value_t = 0)]
    delay: u64,
    /// Number of generated messages.
    #[arg(long, default_value_t = 0)]
    messages: u64,
    /// Message size in bytes, or a range MIN-MAX.
    #[arg(long, default_value = "1000")]
    msg_size: String,
    /// Messages created before this time (s) are not counted.
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// No generated message is created in the last SECS of the trace.
    #[arg(long, default_value_t = 0.0)]
    tail: f64,
    /// Message lifetime, s (default: the whole trace).
    #[arg(long)]
    lifetime: Option<f64>,
    /// Workload file of ONE `C` events (instead of --messages).
    #[arg(long)]
    workload: Option<PathBuf>,
    /// Seed of the workload generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Write delivery times and latencies (JSON) to this file.
    #[arg(long)]
    series: Option<PathBuf>,
    /// Print where the wall-clock time went (agent calls) on stderr.
    #[arg(long)]
    profile: bool,
}

/// `unlimited` → `None`, else a positive integer.
fn limit(s: &str, what: &str) -> Result<Option<u64>> {
    if s.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => bail!("--{what}: expected `unlimited` or a positive integer, got {s:?}"),
    }
}

/// `N` or `MIN-MAX`.
fn range<T: std::str::FromStr + PartialOrd + Copy>(s: &str, what: &str) -> Result<(T, T)> {
    let parse = |x: &str| {
        x.trim()
            .parse::<T>()
            .map_err(|_| anyhow::anyhow!("--{what}: bad number {x:?}"))
    };
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(s)?, parse(s)?),
    };
    if b < a {
        bail!("--{what}: MIN-MAX with MIN > MAX");
    }
    Ok((a, b))
}

fn policy(name: &str, copies: Option<u32>) -> Result<Policy> {
    let s = match copies {
        Some(l) if matches!(name, "spray-and-wait" | "spore") => format!("{name}:{l}"),
        Some(_) => bail!("--copies applies to spray-and-wait and spore only"),
        None => name.to_owned(),
    };
    Ok(s.parse::<Policy>()?)
}

fn cmd_run(a: &RunArgs) -> Result<()> {
    let policy = policy(&a.router, a.copies)?;
    let text = std::fs::read_to_string(&a.trace)
        .with_context(|| format!("reading {}", a.trace.display()))?;
    let tr = trace::parse_trace(&text).with_context(|| format!("trace {}", a.trace.display()))?;
    let workload = match &a.workload {
        Some(p) => {
            let t =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Some(trace::parse_workload(&t).with_context(|| format!("workload {}", p.display()))?)
        }
        None => None,
    };
    let params = RunParams {
        policy,
        bandwidth: limit(&a.bandwidth, "bandwidth")?,
        buffer: limit(&a.buffer, "buffer")?,
        delay_ms: a.delay,
        messages: a.messages,
        msg_size: range(&a.msg_size, "msg-size")?,
        warmup_s: a.warmup,
        tail_s: a.tail,
        lifetime_s: a.lifetime,
        seed: a.seed,
        workload,
        profile: a.profile,
    };
    eprintln!("spore-sim: seed {}", a.seed);
    let r = run::run(&tr, &params)?;
    if let Some(p) = &a.series {
        std::fs::write(p, serde_json::to_vec(&r.series)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if a.profile {
        eprintln!("agent calls: {}\n{}", r.agent_calls, r.profile.table());
    }
    if a.json {
        println!("{}", serde_json::to_string(&r.report)?);
    } else {
        print!("{}", spore_sim::report::table(&r.report));
    }
    Ok(())
}

/// Most contacts `gen poisson` will generate (memory bound).
const MAX_GEN_CONTACTS: f64 = 5e7;

fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

fn cmd_gen(kind: &GenKind) -> Result<()> {
    let events = match *kind {
        GenKind::Poisson {
            nodes,
            rate,
            duration,
            contact_secs,
            seed,
        } => {
            if nodes < 2 || !positive(rate) || !positive(duration) {
                bail!("gen poisson: need --nodes ≥ 2, --rate > 0, --duration > 0");
            }
            let pairs = f64::from(nodes) * f64::from(nodes - 1) / 2.0;
            if pairs * rate * duration > MAX_GEN_CONTACTS {
                bail!(
                    "gen poisson: about {:.0} contacts expected, more than {MAX_GEN_CONTACTS}",
                    pairs * rate * duration
                );
            }
            generate::poisson(&PoissonParams {
                nodes,
                rate_per_s: rate,
                duration_s: duration,
                contact_s: contact_secs,
                seed,
            })
        }
        GenKind::Rwp {
            nodes,
            grid,
            range: r,
            ref speed,
            pause,
            duration,
            step,
            seed,
        } => {
            let speed = range::<f64>(speed, "speed")?;
            let ok = [grid, step, duration, speed.1].into_iter().all(positive);
            if nodes < 2 || !ok || nodes > 10_000 || duration / step > 1e7 {
                bail!(
                    "gen rwp: need 2 ≤ --nodes ≤ 10000, positive --grid, --step, --duration, speed, and at most 1e7 steps"
                );
            }
            let p = RwpParams {
                nodes,
                grid_m: grid,
                range_m: r,
                speed,
                pause_max_s: pause,
                duration_s: duration,
                step_s: step,
                seed,
            };
            generate::rwp(&p)
        }
    };
    print!("{}", generate::format_events(&events));
    Ok(())
}

fn main() -> Result<()> {
    spore::thp::disable();
    let cli = Cli::parse();
    match &cli.cmd {
        Cmd::Gen { kind } => cmd_gen(kind),
        Cmd::Run(a) => cmd_run(a),
        Cmd::Plot { input, out } => spore_sim::plot::plot_files(input, out),
    }
}
