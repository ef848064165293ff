//! Command-line interface: argument parsing and the commands.

mod bundle_cmd;
mod client;
mod demo;
mod doctor;
mod job_cmd;
mod show;

use clap::{Args, Parser, Subcommand};
use spore::bundle::Eid;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// spore: a delay-tolerant store-and-forward bundle agent (RFC 9171 Bundle
/// Protocol v7 over QUIC).
///
/// A node keeps bundles durably, with custody, and forwards them hop by hop
/// whenever a contact with a peer appears. Start one with `spore node`, send
/// a file with `spore send`, follow it with `spore status`. `spore demo`
/// shows a file crossing a relay that crashes on the way.
#[derive(Parser, Debug)]
#[command(name = "spore", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Debug, Clone)]
struct DataDir {
    /// Node data directory [default: $SPORE_DATA_DIR or the platform data dir]
    #[arg(long, env = "SPORE_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
}

impl DataDir {
    fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(d) = &self.data_dir {
            return Ok(d.clone());
        }
        directories::ProjectDirs::from("org", "spore", "spore")
            .map(|p| p.data_dir().to_path_buf())
            .ok_or_else(|| anyhow::anyhow!("no home directory: pass --data-dir"))
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a node in the foreground (ready when DATA_DIR/api.json exists).
    Node(NodeArgs),
    /// Send a file: chunk it into bundles stored durably here, then let the
    /// node forward them. Prints the manifest CID.
    Send {
        /// The file to send.
        file: PathBuf,
        /// Destination endpoint, e.g. dtn://base/files.
        #[arg(long)]
        to: Eid,
        /// Bundle lifetime, e.g. 2h, 7days [default: node default, 7 days].
        #[arg(long, value_parser = humantime::parse_duration)]
        lifetime: Option<Duration>,
        /// Chunk size in bytes (1 KiB ..= 4 MiB) [default: 262144].
        #[arg(long)]
        chunk_size: Option<u32>,
        /// Name at the destination [default: the file's base name].
        #[arg(long)]
        name: Option<String>,
        /// Print the full answer as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Where bundles and files are, and who holds custody.
    Status {
        /// A bundle ID (SOURCE#TIME.SEQ) or a CID (file manifest or chunk).
        id: Option<String>,
        /// Print JSON (one object with `bundles`, `files`, `counters`).
        #[arg(long)]
        json: bool,
        /// Most bundles listed.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Peers: list (default), add or remove dial targets.
    Peers {
        #[command(subcommand)]
        action: Option<PeersCmd>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dir: DataDir,
    },
    /// What the routing policy would do now with each held bundle: our
    /// delay estimate, then per peer in contact the action (direct, forward,
    /// hold), the copies it would get and why not.
    Routes {
        /// Most bundles listed (at most 10 000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON (`router`, `routes`).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Jobs: run a command on a node that offers a service (spec/jobs.md).
    Job {
        #[command(subcommand)]
        action: job_cmd::JobCmd,
    },
    /// Create or inspect single bundle files.
    Bundle {
        #[command(subcommand)]
        action: bundle_cmd::BundleCmd,
    },
    /// Verify the store of a stopped node (indexes, chunk refcounts, held
    /// bytes); one line per problem, exit status 1 if any is left.
    Doctor {
        /// Fix what is safe: rebuild indexes, refcounts and held bytes, drop
        /// dangling entries and orphan chunks (never a held bundle).
        #[arg(long)]
        repair: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Three real nodes on 127.0.0.1 move a file A -> B -> C while B's links
    /// come and go and B is killed (SIGKILL) and restarted.
    Demo {
        /// File to move [default: the spore executable].
        #[arg(long)]
        file: Option<PathBuf>,
        /// Keep the temporary data directories.
        #[arg(long)]
        keep: bool,
    },
}

#[derive(Subcommand, Debug)]
enum PeersCmd {
    /// Dial ADDR:PORT now and whenever the link is down (persisted).
    Add {
        /// QUIC address of the peer.
        addr: SocketAddr,
    },
    /// Stop dialing ADDR:PORT, or hang up on node dtn://NAME/.
    Remove {
        /// An address or a node ID.
        target: String,
    },
}

#[derive(Args, Debug)]
struct NodeArgs {
    #[command(flatten)]
    dir: DataDir,
    /// This node's ID [default: dtn://<key fingerprint>/].
    #[arg(long)]
    node_id: Option<Eid>,
    /// QUIC listen address.
    #[arg(long, default_value = "0.0.0.0:4556")]
    listen: SocketAddr,
    /// Local API address (loopback only).
    #[arg(long, default_value = "127.0.0.1:4557")]
    api: SocketAddr,
    /// Peer to dial (repeatable); kept in DATA_DIR/dial.json.
    #[arg(long = "peer")]
    peers: Vec<SocketAddr>,
    /// Where received files land [default: DATA_DIR/inbox].
    #[arg(long)]
    inbox: Option<PathBuf>,
    /// Default lifetime of bundles created here.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "7days")]
    lifetime: Duration,
    /// Wait for a custody signal this long before offering a bundle again.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    custody_timeout: Duration,
    /// Chunk size for `spore send`, bytes.
    #[arg(long, default_value_t = spore::content::DEFAULT_CHUNK_SIZE)]
    chunk_size: u32,
    /// Refuse new bundles when this many payload bytes are held (store quota).
    #[arg(long, default_value_t = 10 << 30)]
    quota_bytes: u64,
    /// Period of the timer that expires bundles and checks custody timeouts.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "250ms")]
    tick: Duration,
    /// Routing policy: direct, epidemic, spray-and-wait[:L], prophet,
    /// spore[:L] or cgr.
    ///
    /// L is the number of copies of each bundle the node may spread
    /// (1..=1024; default 8 for spray-and-wait, 4 for spore).
    ///   direct          hand a bundle only to its destination node
    ///   epidemic        copy every bundle to every peer that lacks it
    ///   spray-and-wait  binary spray of L copies, then wait for the destination
    ///   prophet         PRoPHET (RFC 6693): copy to peers more likely to meet it
    ///   spore           latency-aware: share L copies by expected delay (default)
    ///   cgr             contact graph routing over --contact-plan FILE
    /// Example: spore node --router spray-and-wait:4
    /// See what the router decides with `spore routes`.
    #[arg(long, default_value = "spore", verbatim_doc_comment)]
    router: spore::routing::Policy,
    /// Contact plan file (spec/contact-plan.md) for `--router cgr`; contact
    /// times without an `epoch` line count from the node's start.
    #[arg(long, value_name = "FILE")]
    contact_plan: Option<PathBuf>,
    /// Abandon an incoming bundle stream that takes longer than this (tests).
    #[arg(long, hide = true, value_parser = humantime::parse_duration, default_value = "120s")]
    bundle_read_deadline: Duration,
    /// Services this node offers: a JSON array of `[[service]]` objects,
    /// e.g. [{"name":"wc","kind":"exec","command":["wc","-c"]}] (spec/jobs.md §4).
    #[arg(long, value_name = "FILE")]
    services: Option<PathBuf>,
    /// Largest smoothed RTT of a peer that may take a real-time job, ms.
    #[arg(long, default_value_t = 150)]
    realtime_rtt_ms: u64,
}

/// Entry point: runs the command, prints one clear error line on failure.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Node(a) => run_node(a),
        Cmd::Send {
            file,
            to,
            lifetime,
            chunk_size,
            name,
            json,
            dir,
        } => client::send(
            &dir.path_or_exit(),
            &file,
            &to,
            lifetime,
            chunk_size,
            name,
            json,
        ),
        Cmd::Status {
            id,
            json,
            limit,
            dir,
        } => client::status(&dir.path_or_exit(), id, json, limit),
        Cmd::Peers { action, json, dir } => client::peers(&dir.path_or_exit(), action, json),
        Cmd::Routes { limit, json, dir } => client::routes(&dir.path_or_exit(), limit, json),
        Cmd::Bundle { action } => bundle_cmd::run(action),
        Cmd::Job { action } => job_cmd::run(action),
        Cmd::Demo { file, keep } => demo::run(file, keep),
        Cmd::Doctor { repair, json, dir } => doctor::run(&dir.path_or_exit(), repair, json),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

impl DataDir {
    fn path_or_exit(&self) -> PathBuf {
        match self.path() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SPORE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,quinn=warn,rustls=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run_node(a: NodeArgs) -> anyhow::Result<()> {
    init_tracing();
    let mut cfg = spore::node::NodeConfig::new(a.dir.path()?);
    cfg.node_id = a.node_id.clone();
    cfg.listen = a.listen;
    cfg.api = a.api;
    cfg.peers = a.peers;
    cfg.inbox = a.inbox;
    cfg.chunk_size = a.chunk_size;
    cfg.tick = a.tick;
    cfg.bundle_read_deadline = a.bundle_read_deadline;
    if let Some(path) = &a.services {
        cfg.jobs.services = spore::jobs::JobsConfig::load_services(path)?;
    }
    cfg.jobs.realtime_rtt_ms = a.realtime_rtt_ms;
    let placeholder = a.node_id.unwrap_or(Eid::DtnNone);
    let mut acfg = spore::agent::AgentConfig::new(placeholder);
    acfg.default_lifetime_ms = a.lifetime.as_millis() as u64;
    acfg.custody_timeout_ms = a.custody_timeout.as_millis() as u64;
    acfg.quota_bytes = a.quota_bytes;
    acfg.policy = a.router;
    if let Some(path) = &a.contact_plan {
        let plan = spore::node::load_contact_plan(path, spore::node::dtn_now())?;
        acfg.contact_plan = Some(std::sync::Arc::new(plan));
    }
    cfg.agent = Some(acfg);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(spore::node::run(cfg, shutdown_signal()))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
