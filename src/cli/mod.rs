//! Command-line interface: argument parsing and the commands.

mod bundle_cmd;
mod client;
mod demo;
mod doctor;
mod job_cmd;
mod node_cmd;
mod query_cmd;
mod show;
mod sync_cmd;
mod trust_cmd;

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
    Node(Box<NodeArgs>),
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
    /// Folder sync: add outgoing folders, accept incoming ones, progress.
    Sync {
        #[command(subcommand)]
        cmd: sync_cmd::SyncCmd,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Ask the node about the mesh: `query asset CID` (who holds a file or
    /// chunk).
    Query {
        #[command(subcommand)]
        what: query_cmd::QueryCmd,
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
    /// Peers: list (default), add or remove dial targets, cap bandwidth,
    /// mark metered links.
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
    /// Trusted node keys: list (default), add, remove, self (spec/trust.md).
    Trust {
        #[command(subcommand)]
        action: Option<trust_cmd::TrustCmd>,
        /// Print JSON.
        #[arg(long, global = true)]
        json: bool,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Print a one-time invite code; another node runs `spore join CODE`
    /// and both then trust each other.
    Invite {
        /// How long the code stays valid, e.g. 10m, 1h [default: 1h].
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
        /// QUIC address the joiner dials (repeatable) [default: the node's].
        #[arg(long = "addr")]
        addrs: Vec<SocketAddr>,
        /// Also write the code to FILE (mode 0600).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Join the node that printed CODE (or `@FILE`): trust its key, dial it,
    /// prove the code; it then trusts this node's key.
    Join {
        /// The invite code, or @FILE.
        code: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dir: DataDir,
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
pub(crate) enum PeersCmd {
    /// Mark the link to node dtn://NAME/ metered (persisted): bulk bundles
    /// (file chunks over 64 KiB) wait for another link or for `off`, while
    /// small files, manifests, status reports and jobs still flow.
    Metered {
        /// Node ID of the peer.
        node: Eid,
        /// on or off.
        #[arg(value_enum)]
        state: OnOff,
    },
    /// Cap the bandwidth towards node dtn://NAME/ (persisted; 0 removes).
    Limit {
        /// Node ID of the peer.
        node: Eid,
        /// Bytes per second, with an optional K, M or G suffix (powers of
        /// 1024), e.g. 512K; 0 removes the cap.
        #[arg(value_parser = parse_rate)]
        rate: u64,
    },
    /// Dial ADDR:PORT now and whenever the link is down (persisted).
    Add {
        /// QUIC address of the peer.
        addr: SocketAddr,
    },
    /// Stop dialing ADDR:PORT, or hang up on node dtn://NAME/; discovery
    /// (beacons, peer exchange) does not dial it again until it is added
    /// back (an address) or the node restarts.
    Remove {
        /// An address or a node ID.
        target: String,
    },
}

#[derive(Args, Debug)]
pub(crate) struct NodeArgs {
    #[command(flatten)]
    dir: DataDir,
    /// This node's ID [default: dtn://<key fingerprint>/].
    #[arg(long)]
    node_id: Option<Eid>,
    /// Config file (TOML, spec/config.md) [default: DATA_DIR/spore.toml if
    /// it exists]. Flags given here win over the file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the effective configuration (file merged with flags) as TOML
    /// and exit.
    #[arg(long)]
    print_config: bool,
    /// QUIC listen address [default: 0.0.0.0:4556].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Local API address, loopback only [default: 127.0.0.1:4557].
    #[arg(long)]
    api: Option<SocketAddr>,
    /// Peer to dial (repeatable); kept in DATA_DIR/dial.json.
    #[arg(long = "peer")]
    peers: Vec<SocketAddr>,
    /// Where received files land [default: DATA_DIR/inbox].
    #[arg(long)]
    inbox: Option<PathBuf>,
    /// Default lifetime of bundles created here [default: 7days].
    #[arg(long, value_parser = humantime::parse_duration)]
    lifetime: Option<Duration>,
    /// Wait for a custody signal this long before offering a bundle again
    /// [default: 30s].
    #[arg(long, value_parser = humantime::parse_duration)]
    custody_timeout: Option<Duration>,
    /// Chunk size for `spore send`, bytes [default: 262144].
    #[arg(long)]
    chunk_size: Option<u32>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Shortest time between two runs of the timer that expires bundles and
    /// checks custody timeouts [default: 250ms]. The timer runs only when
    /// something is due (an expiry, a custody timeout, housekeeping); an
    /// idle node does not wake.
    #[arg(long, value_parser = humantime::parse_duration)]
    tick: Option<Duration>,
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
    /// See what the router decides with `spore routes`. [default: spore]
    #[arg(long, verbatim_doc_comment)]
    router: Option<spore::routing::Policy>,
    /// Contact plan file (spec/contact-plan.md) for `--router cgr`; contact
    /// times without an `epoch` line count from the node's start.
    #[arg(long, value_name = "FILE")]
    contact_plan: Option<PathBuf>,
    /// Multicast discovery beacons, spec/discovery.md [default: on].
    #[arg(long, value_enum)]
    discovery: Option<OnOff>,
    /// Mean time between discovery beacons, jittered ±20 % [default: 5s].
    #[arg(long, value_parser = humantime::parse_duration)]
    beacon_interval: Option<Duration>,
    /// Peer exchange: share and use peer lists on contact [default: on].
    #[arg(long, value_enum)]
    peer_exchange: Option<OnOff>,
    /// Dial recently seen peers from the store at start-up [default: on].
    #[arg(long, value_enum)]
    dial_cached: Option<OnOff>,
    /// Who may connect: open (any node) or private (only trusted keys; see
    /// `spore trust`, `spore invite`). [default: open]
    #[arg(long)]
    trust: Option<spore::node::trust::TrustMode>,
    /// Abandon an incoming bundle stream that takes longer than this (tests).
    #[arg(long, hide = true, value_parser = humantime::parse_duration, default_value = "120s")]
    bundle_read_deadline: Duration,
    /// Services this node offers: a JSON array of `[[service]]` objects,
    /// e.g. [{"name":"wc","kind":"exec","command":["wc","-c"]}] (spec/jobs.md §4).
    #[arg(long, value_name = "FILE")]
    services: Option<PathBuf>,
    /// Largest smoothed RTT of a peer that may take a real-time job, ms
    /// [default: 150].
    #[arg(long)]
    realtime_rtt_ms: Option<u64>,
    /// Folder sync: time a changed file must stay unchanged before it is
    /// sent [default: 2s].
    #[arg(long, value_parser = humantime::parse_duration)]
    sync_settle: Option<Duration>,
    /// Folder sync: period of the safety-net rescan [default: 60s].
    #[arg(long, value_parser = humantime::parse_duration)]
    sync_rescan: Option<Duration>,
}

/// `spore node` flags for the main `[limits]` settings (spore::limits,
/// spec/config.md); each wins over the config file.
#[derive(Args, Debug)]
pub(crate) struct LimitArgs {
    /// Refuse new bundles when this many payload bytes are held (store
    /// quota) [default: 10 GiB].
    #[arg(long)]
    quota_bytes: Option<u64>,
    /// Refuse new bundles when this many bundles are held [default: 1000000].
    #[arg(long)]
    quota_bundles: Option<u64>,
    /// Most of the quota one peer's bundles may use, percent [default: 50].
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    peer_share_percent: Option<u8>,
    /// Part of the quota kept for local submissions, percent [default: 10].
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    local_reserve_percent: Option<u8>,
    /// Sustained bundles per second accepted from one peer (burst: twice
    /// that) [default: 20000].
    #[arg(long)]
    peer_bundles_per_s: Option<u32>,
    /// Sustained bytes per second accepted from one peer [default: 1 GiB].
    #[arg(long)]
    peer_bytes_per_s: Option<u64>,
    /// Disconnect a peer held back longer than this within the flood
    /// window (10 s, or twice this) [default: 5s].
    #[arg(long, value_parser = humantime::parse_duration)]
    flood_wait: Option<Duration>,
    /// First back-off of a flooding peer (doubles per repeat, at most 1 h)
    /// [default: 30s].
    #[arg(long, value_parser = humantime::parse_duration)]
    flood_backoff: Option<Duration>,
    /// Largest bundle accepted or sent, bytes [default: 8 MiB].
    #[arg(long)]
    max_bundle_bytes: Option<usize>,
}

impl LimitArgs {
    /// Writes the flags that were given into `l`.
    pub(crate) fn apply(&self, l: &mut spore::limits::LimitsConfig) {
        let d = spore::limits::LimitsConfig::default();
        l.quota_bytes = self.quota_bytes.unwrap_or(l.quota_bytes);
        l.quota_bundles = self.quota_bundles.unwrap_or(l.quota_bundles);
        l.peer_share_percent = self.peer_share_percent.unwrap_or(l.peer_share_percent);
        l.local_reserve_percent = self
            .local_reserve_percent
            .unwrap_or(l.local_reserve_percent);
        if let Some(r) = self.peer_bundles_per_s {
            l.bundles_per_s = r;
            l.bundles_burst = r.saturating_mul(2);
        }
        l.bytes_per_s = self.peer_bytes_per_s.unwrap_or(l.bytes_per_s);
        if let Some(w) = self.flood_wait {
            l.flood_wait_ms = w.as_millis() as u64;
            l.flood_window_ms = d.flood_window_ms.max(2 * l.flood_wait_ms);
        }
        if let Some(b) = self.flood_backoff {
            l.backoff_min_ms = b.as_millis() as u64;
        }
        l.max_bundle_bytes = self.max_bundle_bytes.unwrap_or(l.max_bundle_bytes);
    }
}

/// A switch given as `on` or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OnOff {
    On,
    Off,
}

impl OnOff {
    pub(crate) fn on(self) -> bool {
        self == OnOff::On
    }
}

/// Entry point: runs the command, prints one clear error line on failure.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Node(a) => node_cmd::run(*a),
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
        Cmd::Sync { cmd, dir } => sync_cmd::run(&dir.path_or_exit(), cmd),
        Cmd::Query { what, dir } => query_cmd::run(&dir.path_or_exit(), what),
        Cmd::Peers { action, json, dir } => client::peers(&dir.path_or_exit(), action, json),
        Cmd::Routes { limit, json, dir } => client::routes(&dir.path_or_exit(), limit, json),
        Cmd::Trust { action, json, dir } => trust_cmd::trust(&dir.path_or_exit(), action, json),
        Cmd::Invite {
            ttl,
            addrs,
            out,
            json,
            dir,
        } => trust_cmd::invite(&dir.path_or_exit(), ttl, &addrs, out, json),
        Cmd::Join { code, json, dir } => trust_cmd::join(&dir.path_or_exit(), &code, json),
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

pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SPORE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,quinn=warn,rustls=warn"));
    // A failed log write (e.g. the log's disk is full) is dropped: by
    // default tracing-subscriber reports it with `eprintln!`, which panics
    // when stderr itself cannot be written, and would take the node down.
    // Colours only on a terminal: a log file (a service's stderr) gets
    // plain text, as does anyone who sets NO_COLOR.
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .log_internal_errors(false)
        .try_init();
}

pub(crate) async fn shutdown_signal() {
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

/// `512K`, `2M`, `1G` (powers of 1024) or plain bytes per second.
fn parse_rate(s: &str) -> Result<u64, String> {
    let s = s
        .trim()
        .trim_end_matches("/s")
        .trim_end_matches("iB")
        .trim_end_matches('B');
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    let n: u64 = num.parse().map_err(|e| format!("bad rate {s:?}: {e}"))?;
    n.checked_mul(mult)
        .ok_or_else(|| "rate too large".to_owned())
}
