//! `spore node`: merges the config file with the flags and runs the node.

use super::NodeArgs;
use anyhow::Context;
use spore::bundle::Eid;
use spore::node::config::{ConfigFile, NodeSection};
use spore::node::{NodeConfig, dtn_now, load_contact_plan};
use spore::routing::Policy;

/// Runs `spore node` (or prints the effective config with `--print-config`).
pub(super) fn run(a: NodeArgs) -> anyhow::Result<()> {
    let data_dir = a.dir.path()?;
    let mut file = match ConfigFile::locate(a.config.as_deref(), &data_dir) {
        Some(path) => ConfigFile::load(&path)?,
        None => ConfigFile::default(),
    };
    merge_flags(&mut file.node, &a);
    a.limits.apply(&mut file.limits);
    discovery_flags(&mut file.discovery, &a);
    if let Some(mode) = a.trust {
        file.trust.mode = mode;
    }
    if let Some(d) = a.sync_settle {
        file.sync.settle_ms = d.as_millis() as u64;
    }
    if let Some(d) = a.sync_rescan {
        file.sync.rescan_s = d.as_secs().max(1);
    }
    if a.print_config {
        let text = file.to_toml().map_err(anyhow::Error::msg)?;
        println!("{}", text.trim_end());
        return Ok(());
    }
    super::init_tracing();
    let cfg = node_config(data_dir, &file, &a)?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        rt.worker_threads(runtime_workers());
    }
    let rt = rt.enable_all().build()?;
    rt.block_on(spore::node::run(cfg, super::shutdown_signal()))
}

/// Worker threads of the node's tokio runtime: one per core but one, and
/// at least one (`TOKIO_WORKER_THREADS` in the environment overrides it).
///
/// The store's transactions run on the node's agent thread and received
/// files are written on a writer thread of their own (`node::early`); the
/// runtime (QUIC, hashing chunks as they arrive, the local API) leaves
/// them a core. Measured on the 2-core reference machine, one worker
/// instead of two, three alternating pairs of `one_hop 256`: contact
/// transfer 338–352 against 311–345 MB/s at 1.13–1.14 against 1.21–1.33
/// CPU-seconds for both nodes, and half the context switches; folder
/// sync of 1 GiB and of 10 000 small files unchanged.
fn runtime_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

/// Flags given on the command line replace the file's values; `--peer`s
/// are added to the file's peers.
fn merge_flags(n: &mut NodeSection, a: &NodeArgs) {
    if let Some(id) = &a.node_id {
        n.node_id = Some(id.to_string());
    }
    n.listen = a.listen.or(n.listen);
    n.api = a.api.or(n.api);
    for p in &a.peers {
        if !n.peers.contains(p) {
            n.peers.push(*p);
        }
    }
    n.inbox = a.inbox.clone().or(n.inbox.take());
    n.lifetime = a.lifetime.or(n.lifetime);
    n.custody_timeout = a.custody_timeout.or(n.custody_timeout);
    n.chunk_size = a.chunk_size.or(n.chunk_size);
    n.tick = a.tick.or(n.tick);
    if let Some(r) = &a.router {
        n.router = Some(r.to_string());
    }
    n.contact_plan = a.contact_plan.clone().or(n.contact_plan.take());
}

/// Builds the node's configuration from the merged file section.
fn node_config(
    data_dir: std::path::PathBuf,
    file: &ConfigFile,
    a: &NodeArgs,
) -> anyhow::Result<NodeConfig> {
    let n = &file.node;
    let mut cfg = NodeConfig::new(data_dir);
    let node_id: Option<Eid> = match &n.node_id {
        Some(s) => Some(s.parse().with_context(|| format!("[node] node_id {s:?}"))?),
        None => None,
    };
    cfg.node_id = node_id.clone();
    cfg.listen = n.listen.unwrap_or(cfg.listen);
    cfg.api = n.api.unwrap_or(cfg.api);
    cfg.peers = n.peers.clone();
    cfg.inbox = n.inbox.clone();
    cfg.chunk_size = n.chunk_size.unwrap_or(cfg.chunk_size);
    cfg.tick = n.tick.unwrap_or(cfg.tick);
    cfg.bundle_read_deadline = a.bundle_read_deadline;
    cfg.limits = file.limits.clone();
    cfg.discovery = file.discovery.clone();
    cfg.trust = file.trust.clone();
    cfg.jobs = file.jobs.clone();
    cfg.jobs.services.extend(file.service.iter().cloned());
    if let Some(path) = &a.services {
        cfg.jobs.services = spore::jobs::JobsConfig::load_services(path)?;
    }
    spore::jobs::validate_services(&cfg.jobs.services).context("[[service]]")?;
    if let Some(ms) = a.realtime_rtt_ms {
        cfg.jobs.realtime_rtt_ms = ms;
    }
    cfg.sync = file.sync.clone();
    cfg.assets = file.assets.clone();
    for m in &n.metered_peers {
        let eid: Eid = m
            .parse()
            .with_context(|| format!("[node] metered_peers: {m:?}"))?;
        cfg.metered_peers.push(eid);
    }
    let mut acfg = spore::agent::AgentConfig::new(node_id.unwrap_or(Eid::DtnNone));
    if let Some(l) = n.lifetime {
        acfg.default_lifetime_ms = l.as_millis() as u64;
    }
    if let Some(b) = n.metered_bulk_bytes {
        acfg.metered_bulk_bytes = b;
    }
    if let Some(t) = n.custody_timeout {
        acfg.custody_timeout_ms = t.as_millis() as u64;
    }
    if let Some(r) = &n.router {
        acfg.policy = r
            .parse::<Policy>()
            .map_err(|e| anyhow::anyhow!("router {r:?}: {e}"))?;
    }
    if let Some(path) = &n.contact_plan {
        let plan = load_contact_plan(path, dtn_now())?;
        acfg.contact_plan = Some(std::sync::Arc::new(plan));
    }
    cfg.agent = Some(acfg);
    Ok(cfg)
}

/// `--discovery`, `--beacon-interval`, `--peer-exchange`, `--dial-cached`
/// replace the `[discovery]` settings.
fn discovery_flags(d: &mut spore::node::discovery::DiscoveryConfig, a: &NodeArgs) {
    if let Some(v) = a.discovery {
        d.enabled = v.on();
    }
    if let Some(i) = a.beacon_interval {
        d.interval_ms = i.as_millis() as u64;
    }
    if let Some(v) = a.peer_exchange {
        d.peer_exchange = v.on();
    }
    if let Some(v) = a.dial_cached {
        d.dial_cached = v.on();
    }
}
