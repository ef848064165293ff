//! The tokio driver: owns sockets, timers and tasks, and no policy.
//!
//! It feeds [`crate::agent::Event`]s from the QUIC convergence layer, the
//! local API and a timer into the agent (which runs on its own thread,
//! because its store commits block), and carries out the agent's
//! [`crate::agent::Action`]s. The agent thread is the only writer of the store.
//!
//! Files in the data directory: `store.redb` (the store), `identity.key`
//! (Ed25519, 0600), `api.json` (written when ready: API and QUIC addresses,
//! node ID), `api.token` (0600), `dial.json` (peers to dial), `trust.json`
//! (trusted keys, 0600; spec/trust.md), `inbox/`
//! (received files), `delivered/` (payloads of other services), `sync.json`
//! and `sync.redb` (folder sync, spec/sync.md), `bandwidth.json` (caps).

mod actions;
mod api;
mod asset;
pub mod asset_advert;
mod bandwidth;
pub mod beacon;
mod caps;
mod changes;
pub mod config;
mod contacts;
pub mod discovery;
mod early;
mod exec;
pub mod invite;
mod job_input;
mod job_parts;
mod job_runner;
mod join;
mod limits;
mod metered;
mod ollama;
#[cfg(target_os = "linux")]
pub mod peer_uid;
mod pex;
pub mod proto;
mod realtime;
mod sync;
mod sync_pack;
mod sync_recv;
mod ticker;
pub mod trust;
mod trust_api;

use crate::agent::{Agent, AgentConfig, Event, PeerView, RouteView, StatusView};
use crate::bundle::{DtnTime, Eid};
use crate::cla::identity::Identity;
use crate::cla::quic::{ClaConfig, QuicCla};
use crate::routing::Policy;
use crate::routing::plan::{ContactPlan, PlanError};
use crate::store::Store;
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info};

/// How a node is run (`spore node` flags).
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Data directory (store, identity, inbox, api.json).
    pub data_dir: PathBuf,
    /// Node ID; default `dtn://<key fingerprint>/`.
    pub node_id: Option<Eid>,
    /// QUIC listen address.
    pub listen: SocketAddr,
    /// Local API address; must be a loopback address.
    pub api: SocketAddr,
    /// Peers to dial (added to `dial.json`).
    pub peers: Vec<SocketAddr>,
    /// Where received files go; default `<data-dir>/inbox`.
    pub inbox: Option<PathBuf>,
    /// Chunk size for `spore send`, bytes.
    pub chunk_size: u32,
    /// Agent limits and defaults (the node ID inside is replaced).
    pub agent: Option<AgentConfig>,
    /// Convergence-layer limits.
    pub cla: ClaConfig,
    /// Timer period for expiry and custody timeouts.
    pub tick: Duration,
    /// Longest time one incoming bundle stream may take to arrive (default
    /// 120 s); a slower stream is abandoned and counted
    /// (`refused_stream_deadline`).
    pub bundle_read_deadline: Duration,
    /// Services offered and job settings (spec/jobs.md; config `[[service]]`).
    pub jobs: crate::jobs::JobsConfig,
    /// The `[limits]` section: rates, flooding, quota, input sizes; applied
    /// over `cla` and `agent` at start ([`crate::limits::LimitsConfig::apply`]).
    pub limits: crate::limits::LimitsConfig,
    /// Beacons, cached peers and peer exchange (section `[discovery]`).
    pub discovery: discovery::DiscoveryConfig,
    /// Who may connect (`[trust]`, spec/trust.md).
    pub trust: trust::TrustConfig,
    /// Folder sync settings (config section `[sync]`, spec/sync.md).
    pub sync: crate::sync::SyncConfig,
    /// Peers whose links are metered at start (added to `metered.json`).
    pub metered_peers: Vec<Eid>,
    /// Asset adverts (config section `[assets]`, spec/assets.md).
    pub assets: asset_advert::AssetConfig,
}

impl NodeConfig {
    /// Defaults for `data_dir`: QUIC on 0.0.0.0:4556, API on 127.0.0.1:4557.
    pub fn new(data_dir: PathBuf) -> NodeConfig {
        NodeConfig {
            data_dir,
            node_id: None,
            listen: SocketAddr::from(([0, 0, 0, 0], 4556)),
            api: SocketAddr::from(([127, 0, 0, 1], 4557)),
            peers: Vec::new(),
            inbox: None,
            chunk_size: crate::content::DEFAULT_CHUNK_SIZE,
            agent: None,
            cla: ClaConfig::default(),
            tick: Duration::from_millis(250),
            bundle_read_deadline: contacts::BUNDLE_READ_DEADLINE,
            jobs: crate::jobs::JobsConfig::default(),
            limits: crate::limits::LimitsConfig::default(),
            discovery: discovery::DiscoveryConfig::default(),
            trust: trust::TrustConfig::default(),
            sync: crate::sync::SyncConfig::default(),
            metered_peers: Vec::new(),
            assets: asset_advert::AssetConfig::default(),
        }
    }
}

/// What `api.json` holds.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ApiInfo {
    /// Local API address.
    pub api: String,
    /// Node ID.
    pub node_id: String,
    /// QUIC address.
    pub quic: String,
    /// Process ID.
    pub pid: u32,
}

/// The current DTN time from the system clock (the only clock read in spore
/// outside the CLI).
pub fn dtn_now() -> DtnTime {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    DtnTime::from_unix_ms(ms)
}

/// The latest expiry (DTN ms) for the manifest of a file whose chunk
/// bundles are submitted from now on with lifetime `lifetime_ms` (`None`:
/// the agent's default): 1 ms before the earliest of them can expire, so
/// that it is sent first and is gone no later than they are
/// (spec/manifest.md §Sending).
pub(crate) fn manifest_expires_by(shared: &Shared, lifetime_ms: Option<u64>) -> u64 {
    let lifetime = lifetime_ms.unwrap_or(shared.default_lifetime_ms);
    dtn_now().0.saturating_add(lifetime).saturating_sub(1)
}

/// Why a contact plan file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ContactPlanFileError {
    /// The file cannot be read.
    #[error("cannot read the contact plan {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not UTF-8 text.
    #[error("contact plan {path} is not UTF-8 text")]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// A line is invalid (the error names it).
    #[error("contact plan {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, and on which line.
        source: PlanError,
    },
}

/// Reads and parses a contact plan file (spec/contact-plan.md); contact
/// times without an `epoch` line are relative to `now` (DTN ms).
///
/// # Errors
/// [`ContactPlanFileError`]: unreadable file, not UTF-8, or the first bad
/// line (by number).
pub fn load_contact_plan(path: &Path, now: DtnTime) -> Result<ContactPlan, ContactPlanFileError> {
    let bytes = std::fs::read(path).map_err(|source| ContactPlanFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| ContactPlanFileError::NotText {
        path: path.to_path_buf(),
    })?;
    ContactPlan::parse(&text, now.0).map_err(|source| ContactPlanFileError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Requests to the agent thread.
pub(crate) enum Command {
    Event(Event),
    Status {
        filter: Option<String>,
        limit: usize,
        reply: oneshot::Sender<Result<StatusView, String>>,
    },
    Peers {
        reply: oneshot::Sender<Result<Vec<PeerView>, String>>,
    },
    Routes {
        limit: usize,
        reply: oneshot::Sender<Result<Vec<RouteView>, String>>,
    },
    /// A store write that is not an agent event (learned asset holders),
    /// run on the agent thread so that it stays the store's only writer.
    Write(Box<dyn FnOnce(&Store) + Send>),
    /// Stop the agent thread (after the commands queued before it).
    Shutdown,
}

/// Shared handles of a running node.
pub(crate) struct Shared {
    /// When the agent next needs a tick (`ticker.rs`).
    pub ticks: Arc<ticker::TickSchedule>,
    /// Wakes the loops that watch the store (`changes.rs`).
    pub changes: Arc<changes::StoreChanges>,
    pub cmd: mpsc::Sender<Command>,
    pub store: Arc<Store>,
    pub node_id: Eid,
    /// The routing policy (reported by the status and routes APIs).
    pub router: Policy,
    pub data_dir: PathBuf,
    pub inbox: PathBuf,
    pub chunk_size: u32,
    /// The agent's default bundle lifetime, ms (a manifest's lifetime is
    /// clipped to its file's first chunk, spec/manifest.md §Sending).
    pub default_lifetime_ms: u64,
    pub cla: QuicCla,
    pub contacts: contacts::Contacts,
    pub submits: actions::Tickets,
    pub bundle_read_deadline: Duration,
    /// The agent's decode limits (for decoding received bundles off the
    /// agent thread, [`crate::agent::Received::prechecked`]).
    pub decode_limits: crate::bundle::codec::DecodeLimits,
    /// Bundle streams refused by the CL before decoding (reset, too large,
    /// too slow), by counter name; in memory, reset when the node restarts.
    pub stream_refusals: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    /// The job executor (spec/jobs.md).
    pub jobs: job_runner::JobRunner,
    /// Per-peer rate limits and flood back-offs (and their counters).
    pub guards: limits::PeerGuards,
    /// Discovery state: beacons, peers heard of, discovery dial back-off.
    pub discovery: discovery::Discovery,
    /// The trust list, invites and trust counters (also the CLA's `PeerTrust`).
    pub trust: Arc<trust::TrustState>,
    /// Folder sync registrations and state (`sync.json`, `sync.redb`).
    pub sync: Arc<sync::SyncNode>,
    /// Per-peer outgoing bandwidth caps (`bandwidth.json`).
    pub bandwidth: bandwidth::Bandwidth,
    /// Metered links: bulk bundles wait (`metered.json`).
    pub metered: metered::Metered,
    /// Incoming files written as their chunks arrive (`early.rs`).
    pub early: early::EarlyFiles,
    /// Asset adverts: settings and counters (spec/assets.md).
    pub assets: asset_advert::Assets,
}

/// Says what was found in the store at start-up: what is resumed.
fn log_recovery(agent: &Agent) {
    match agent.store().stats() {
        Ok(st) => {
            let held_bytes = agent
                .store()
                .meta_u64("held_bytes")
                .ok()
                .flatten()
                .unwrap_or(0);
            info!(
                held_bundles = st.held,
                held_bytes,
                records = st.records,
                delivered = st.delivered,
                chunks = st.chunks,
                "store opened: bundles held in custody are resumed and offered at the next contacts"
            );
        }
        Err(e) => tracing::warn!(error = %e, "cannot read store statistics"),
    }
}

fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data dir {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot set permissions of {}", dir.display()))?;
    }
    Ok(())
}

/// Runs a node until `shutdown` resolves (SIGINT/SIGTERM in `spore node`).
///
/// # Errors
/// Start-up failures: data dir not writable, store locked by another node
/// or corrupt, address in use, API address not loopback, router `cgr`
/// without a contact plan.
pub async fn run(
    cfg: NodeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    if !cfg.api.ip().is_loopback() {
        bail!(
            "the local API must listen on a loopback address, not {}",
            cfg.api
        );
    }
    prepare_dir(&cfg.data_dir)?;
    let api_json = cfg.data_dir.join("api.json");
    let _ = std::fs::remove_file(&api_json);
    let local = LocalState::open(&cfg)?;
    let node_id = local.node_id.clone();
    let trust = Arc::new(trust::TrustState::open(
        &cfg.data_dir,
        &cfg.trust,
        local.identity.public_key(),
    )?);
    let mut cla_cfg = cfg.cla.clone();
    cla_cfg.max_bundle_bytes = cfg.limits.max_bundle_bytes;
    let cla = QuicCla::bind_with_trust(
        cfg.listen,
        &local.identity,
        &node_id.to_string(),
        cla_cfg,
        trust.clone(),
    )
    .with_context(|| format!("cannot listen for QUIC on {}", cfg.listen))?;
    let (shared, act_rx, agent_thread) = start_agent(&cfg, local, trust, cla.clone())?;
    metered::announce(&shared).await;
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(actions::dispatch(shared.clone(), act_rx));
    tasks.spawn(contacts::listen(shared.clone()));
    tasks.spawn(ticker::run(shared.clone(), cfg.tick));
    tasks.spawn(sync::run(shared.clone()));
    tasks.spawn(sync_recv::run(shared.clone()));
    tasks.spawn(asset_advert::run(shared.clone()));
    contacts::start_dialers(&shared, &cfg.peers).await?;
    discovery::start(&shared, &mut tasks);
    let info = start_api(&cfg, &shared, &mut tasks).await?;
    write_atomically(&api_json, serde_json::to_string_pretty(&info)?.as_bytes())?;
    info!(node = %node_id, quic = %info.quic, api = %info.api, "node ready");
    shutdown.await;
    info!("shutting down");
    let _ = std::fs::remove_file(&api_json);
    cla.close();
    tasks.abort_all();
    let _ = shared.cmd.send(Command::Shutdown).await;
    drop(shared);
    while tasks.join_next().await.is_some() {}
    if agent_thread.join().is_err() {
        error!("agent thread panicked");
    }
    Ok(())
}

/// What a node reads from its data dir before it talks to anyone: the
/// identity, the agent over the opened store, the folder sync state and
/// the inbox, with partial files of a crashed reassembly removed.
struct LocalState {
    identity: Identity,
    node_id: Eid,
    inbox: PathBuf,
    agent: Agent,
    sync_node: sync::SyncNode,
}

impl LocalState {
    fn open(cfg: &NodeConfig) -> anyhow::Result<Self> {
        let identity = Identity::load_or_create(&cfg.data_dir.join("identity.key"))
            .context("cannot load or create the node identity")?;
        let node_id = match &cfg.node_id {
            Some(n) => n.node_id(),
            None => Eid::dtn(&identity.fingerprint(), "")?,
        };
        let inbox = cfg
            .inbox
            .clone()
            .unwrap_or_else(|| cfg.data_dir.join("inbox"));
        let agent = open_agent(cfg, &node_id)?;
        let sync_node = sync::SyncNode::open(&cfg.data_dir, cfg.sync.clone())
            .context("cannot open the folder sync state")?;
        // Before the agent starts: its first actions may write files (and
        // temporary files) into these directories. Their files are written
        // again (the agent still has the chunks). The inbox is walked too:
        // folder files without an accept dir land in its subfolders.
        for root in std::iter::once(inbox.clone()).chain(sync_node.accept_dirs()) {
            let n = crate::sync::receive::remove_partial_files(&root);
            if n > 0 {
                info!(dir = %root.display(), files = n, "removed partial files left by a crash");
            }
        }
        Ok(Self {
            identity,
            node_id,
            inbox,
            agent,
            sync_node,
        })
    }
}

/// Starts the agent thread and builds the state the node's tasks share;
/// returns it with the receiver of the agent's actions and the thread.
fn start_agent(
    cfg: &NodeConfig,
    local: LocalState,
    trust: Arc<trust::TrustState>,
    cla: QuicCla,
) -> anyhow::Result<(
    Arc<Shared>,
    mpsc::UnboundedReceiver<crate::agent::Action>,
    std::thread::JoinHandle<()>,
)> {
    let LocalState {
        identity,
        node_id,
        inbox,
        agent,
        sync_node,
    } = local;
    let router = agent.router().policy();
    let store = agent.store_handle();
    let decode_limits = agent.config().decode_limits.clone();
    let default_lifetime_ms = agent.config().default_lifetime_ms;
    let (cmd_tx, cmd_rx) = mpsc::channel(4096);
    let (act_tx, act_rx) = mpsc::unbounded_channel();
    let ticks = Arc::new(ticker::TickSchedule::new());
    let changes = Arc::new(changes::StoreChanges::new());
    let signals = actions::AgentSignals {
        ticks: ticks.clone(),
        changes: changes.clone(),
    };
    let agent_thread = std::thread::Builder::new()
        .name("spore-agent".into())
        .spawn(move || actions::agent_loop(agent, cmd_rx, act_tx, &signals))
        .context("cannot start the agent thread")?;
    let early = {
        let store = store.clone();
        let source: early::ChunkSource =
            Arc::new(move |cid: &[u8]| store.chunk(cid).ok().flatten().map(bytes::Bytes::from));
        early::EarlyFiles::new(Some(source))
    };
    let shared = Arc::new(Shared {
        ticks,
        changes,
        cmd: cmd_tx,
        store,
        node_id,
        router,
        data_dir: cfg.data_dir.clone(),
        inbox,
        chunk_size: cfg.chunk_size,
        default_lifetime_ms,
        cla,
        contacts: contacts::Contacts::default(),
        submits: actions::Tickets::default(),
        bundle_read_deadline: cfg.bundle_read_deadline,
        decode_limits,
        stream_refusals: Default::default(),
        jobs: job_runner::JobRunner::new(
            cfg.jobs.clone(),
            cfg.limits.jobs_per_s,
            cfg.limits.jobs_burst,
        ),
        guards: limits::PeerGuards::new(&cfg.limits),
        discovery: discovery::Discovery::new(cfg.discovery.clone(), identity.fingerprint()),
        trust,
        sync: Arc::new(sync_node),
        bandwidth: bandwidth::Bandwidth::load(&cfg.data_dir),
        metered: metered::Metered::load(&cfg.data_dir, &cfg.metered_peers),
        early,
        assets: asset_advert::Assets::new(cfg.assets.clone()),
    });
    Ok((shared, act_rx, agent_thread))
}

/// Opens the store and the agent over it, and logs what was found.
fn open_agent(cfg: &NodeConfig, node_id: &Eid) -> anyhow::Result<Agent> {
    let store = Store::open(&cfg.data_dir.join("store.redb"))
        .with_context(|| format!("cannot open the store in {}", cfg.data_dir.display()))?;
    let mut acfg = cfg
        .agent
        .clone()
        .unwrap_or_else(|| AgentConfig::new(node_id.clone()));
    acfg.node_id = node_id.clone();
    // The CLA side of the limits is applied where the CLA is bound.
    cfg.limits.apply(&mut ClaConfig::default(), &mut acfg);
    if acfg.policy == Policy::Cgr && acfg.contact_plan.is_none() {
        bail!(
            "router cgr needs a contact plan (--contact-plan FILE, format in spec/contact-plan.md)"
        );
    }
    let agent = Agent::new(store, acfg).context("cannot start the agent")?;
    log_recovery(&agent);
    Ok(agent)
}

/// Binds the local API, writes the token, serves; returns what `api.json` says.
async fn start_api(
    cfg: &NodeConfig,
    shared: &Arc<Shared>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> anyhow::Result<ApiInfo> {
    let listener = tokio::net::TcpListener::bind(cfg.api)
        .await
        .with_context(|| format!("cannot listen for the API on {}", cfg.api))?;
    let api_addr = listener.local_addr()?;
    let token = api::write_token(&cfg.data_dir)?;
    tasks.spawn(api::serve(shared.clone(), listener, token));
    Ok(ApiInfo {
        api: api_addr.to_string(),
        node_id: shared.node_id.to_string(),
        quic: shared.cla.local_addr()?.to_string(),
        pid: std::process::id(),
    })
}

/// Writes `bytes` to `path` via a temporary file, fsync and rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
