//! Trust: which peer keys may open a contact with this node (spec/trust.md).
//!
//! In mode [`TrustMode::Open`] every authenticated key is accepted (the TLS
//! handshake still proves the peer holds its key). In [`TrustMode::Private`]
//! only keys in the trust list pass the handshake, plus, while an invite is
//! pending, unknown keys that must then present the invite's secret in a
//! `Join` control message before anything else happens (probation).
//!
//! The list lives in `DATA_DIR/trust.json` (mode 0600, written atomically)
//! and in memory in a [`TrustState`] that the TLS verifier reads through the
//! [`PeerTrust`] trait: a read lock and a map lookup, nothing that blocks.

use crate::cla::{PeerCertificate, PeerTrust};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::warn;

/// Name of the trust list file in the data directory.
pub const TRUST_FILE: &str = "trust.json";
/// Most invites pending at once (older ones are dropped first).
pub const MAX_PENDING_INVITES: usize = 64;
/// Most entries in the trust list.
pub const MAX_TRUST_ENTRIES: usize = 4096;
/// Longest accepted entry name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// First quiet period after logging a refused key; doubles up to [`LOG_BACKOFF_MAX`].
const LOG_BACKOFF_MIN: Duration = Duration::from_secs(10);
/// Longest quiet period between two logs about the same refused key.
const LOG_BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// Most refused keys whose log back-off is remembered.
const MAX_LOG_KEYS: usize = 4096;
/// Used invite secrets remembered, to tell "already used" from "unknown".
const MAX_USED_SECRETS: usize = 256;

/// Who may connect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustMode {
    /// Any peer that proves possession of its key (the default).
    #[default]
    Open,
    /// Only keys in the trust list (and invited keys on probation).
    Private,
}

impl FromStr for TrustMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(TrustMode::Open),
            "private" => Ok(TrustMode::Private),
            _ => Err(format!("trust mode {s:?} is neither open nor private")),
        }
    }
}

impl std::fmt::Display for TrustMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrustMode::Open => "open",
            TrustMode::Private => "private",
        })
    }
}

/// The `[trust]` section of the node configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustConfig {
    /// `open` (default) or `private`.
    pub mode: TrustMode,
    /// Public keys (64 hex characters each) added to the trust list at
    /// start-up (default none).
    pub keys: Vec<String>,
    /// Lifetime of an invite when `spore invite` gives none, seconds
    /// (default 3600).
    pub invite_ttl_s: u64,
    /// How long an invited peer on probation has to send its `Join`, ms
    /// (default 10 000).
    pub join_timeout_ms: u64,
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig {
            mode: TrustMode::Open,
            keys: Vec::new(),
            invite_ttl_s: 3600,
            join_timeout_ms: 10_000,
        }
    }
}

/// A node's raw 32-byte Ed25519 public key; text form is 64 lowercase hex
/// characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeKey(pub [u8; 32]);

impl std::fmt::Display for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl FromStr for NodeKey {
    type Err = TrustError;
    fn from_str(s: &str) -> Result<Self, TrustError> {
        let bad = || TrustError::BadKey(s.chars().take(80).collect());
        let b = hex::decode(s.trim()).map_err(|_| bad())?;
        Ok(NodeKey(b.try_into().map_err(|_| bad())?))
    }
}

impl Serialize for NodeKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for NodeKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One trusted key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustEntry {
    /// The key.
    pub key: NodeKey,
    /// An operator's name for it (e.g. `relay-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The node ID last seen with this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// When it was added, Unix ms.
    pub added_ms: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct TrustFile {
    version: u32,
    entries: Vec<TrustEntry>,
}

/// Errors of trust-list operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The text is not 64 hex characters.
    #[error("{0:?} is not a public key (64 hex characters)")]
    BadKey(String),
    /// A name is empty, too long or looks like a key.
    #[error("bad name {0:?}: 1 to 64 characters, not 64 hex digits")]
    BadName(String),
    /// The list is full.
    #[error("the trust list is full ({MAX_TRUST_ENTRIES} keys)")]
    Full,
    /// `trust.json` cannot be read, parsed or written.
    #[error("trust list {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Why an invite secret was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JoinRefusal {
    /// No pending invite has this secret.
    #[error("join refused: unknown invite code")]
    Unknown,
    /// The invite existed but expired.
    #[error("join refused: the invite code expired")]
    Expired,
    /// The invite was already used (one code, one join).
    #[error("join refused: the invite code was already used")]
    Used,
}

struct PendingInvite {
    secret: [u8; 16],
    expires_unix_s: u64,
}

#[derive(Default)]
struct Invites {
    pending: Vec<PendingInvite>,
    used: VecDeque<[u8; 16]>,
    expired: VecDeque<[u8; 16]>,
}

/// The trust state of a running node, shared by the TLS verifier, the
/// contacts and the API.
#[derive(Debug)]
pub struct TrustState {
    mode: TrustMode,
    own_key: NodeKey,
    path: PathBuf,
    entries: RwLock<BTreeMap<NodeKey, TrustEntry>>,
    invites: Mutex<InvitesDebug>,
    log_backoff: Mutex<HashMap<NodeKey, (Instant, Duration)>>,
    write_lock: Mutex<()>,
    /// Peers refused during the handshake because their key is not trusted.
    pub refused_untrusted: AtomicU64,
    /// Joins refused (wrong, expired or used secret, no Join in time).
    pub refused_join: AtomicU64,
    /// Peers admitted by a valid invite.
    pub joined: AtomicU64,
    /// Contacts on probation now (bounded by `join::MAX_PROBATION_CONTACTS`).
    pub on_probation: std::sync::atomic::AtomicUsize,
    /// How long a peer on probation has to send its `Join`.
    pub join_timeout: Duration,
    /// Lifetime of an invite when none is asked for, seconds.
    pub invite_ttl_s: u64,
}

/// [`Invites`] with a `Debug` that hides the secrets.
#[derive(Default)]
struct InvitesDebug(Invites);

impl std::fmt::Debug for InvitesDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} pending invites", self.0.pending.len())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Poisoning only follows a panic elsewhere; the data stays consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Unix time in ms from the system clock (0 before 1970).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl TrustState {
    /// Loads `DATA_DIR/trust.json` (absent: empty list) and adds the keys of
    /// `cfg.keys` (persisting them if new).
    ///
    /// # Errors
    /// [`TrustError::File`] if the file exists but cannot be read or parsed,
    /// or the list cannot be written; [`TrustError::BadKey`] for a bad
    /// configured key.
    pub fn open(
        data_dir: &Path,
        cfg: &TrustConfig,
        own_key: [u8; 32],
    ) -> Result<TrustState, TrustError> {
        let path = data_dir.join(TRUST_FILE);
        let file_err = |reason: String| TrustError::File {
            path: path.clone(),
            reason,
        };
        let file: TrustFile = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| file_err(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => TrustFile::default(),
            Err(e) => return Err(file_err(e.to_string())),
        };
        let entries = file.entries.into_iter().map(|e| (e.key, e)).collect();
        let state = TrustState {
            mode: cfg.mode,
            own_key: NodeKey(own_key),
            path,
            entries: RwLock::new(entries),
            invites: Mutex::default(),
            log_backoff: Mutex::default(),
            write_lock: Mutex::default(),
            refused_untrusted: AtomicU64::new(0),
            refused_join: AtomicU64::new(0),
            joined: AtomicU64::new(0),
            on_probation: std::sync::atomic::AtomicUsize::new(0),
            join_timeout: Duration::from_millis(cfg.join_timeout_ms),
            invite_ttl_s: cfg.invite_ttl_s,
        };
        for k in &cfg.keys {
            let key: NodeKey = k.parse()?;
            if !state.is_trusted(&key) {
                state.add(key, Some("config".into()), None)?;
            }
        }
        Ok(state)
    }

    /// The trust mode (fixed at start-up).
    pub fn mode(&self) -> TrustMode {
        self.mode
    }

    /// This node's own key.
    pub fn own_key(&self) -> NodeKey {
        self.own_key
    }

    /// Whether `key` is in the trust list.
    pub fn is_trusted(&self, key: &NodeKey) -> bool {
        self.read().contains_key(key)
    }

    /// The trust list, ordered by key.
    pub fn list(&self) -> Vec<TrustEntry> {
        self.read().values().cloned().collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<NodeKey, TrustEntry>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<NodeKey, TrustEntry>> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `key` (or updates its name / node ID when given) and persists the
    /// list. Returns whether the key is new.
    ///
    /// # Errors
    /// [`TrustError::BadName`], [`TrustError::Full`], [`TrustError::File`].
    pub fn add(
        &self,
        key: NodeKey,
        name: Option<String>,
        node_id: Option<String>,
    ) -> Result<bool, TrustError> {
        if let Some(n) = &name {
            check_name(n)?;
        }
        let _w = lock(&self.write_lock);
        let (new, snapshot) = {
            let mut m = self.write();
            let new = !m.contains_key(&key);
            if new && m.len() >= MAX_TRUST_ENTRIES {
                return Err(TrustError::Full);
            }
            let e = m.entry(key).or_insert_with(|| TrustEntry {
                key,
                name: None,
                node_id: None,
                added_ms: unix_ms(),
            });
            e.name = name.or(e.name.take());
            e.node_id = node_id.or(e.node_id.take());
            (new, m.values().cloned().collect())
        };
        self.save(snapshot)?;
        Ok(new)
    }

    /// Removes every entry whose key (hex) or name is `key_or_name`, persists
    /// the list, and returns the removed entries.
    ///
    /// # Errors
    /// [`TrustError::File`] if the list cannot be written.
    pub fn remove(&self, key_or_name: &str) -> Result<Vec<TrustEntry>, TrustError> {
        let key = key_or_name.parse::<NodeKey>().ok();
        let _w = lock(&self.write_lock);
        let (removed, snapshot) = {
            let mut m = self.write();
            let hit: Vec<NodeKey> = m
                .values()
                .filter(|e| Some(e.key) == key || e.name.as_deref() == Some(key_or_name))
                .map(|e| e.key)
                .collect();
            let removed: Vec<TrustEntry> = hit.iter().filter_map(|k| m.remove(k)).collect();
            (removed, m.values().cloned().collect::<Vec<_>>())
        };
        if !removed.is_empty() {
            self.save(snapshot)?;
        }
        Ok(removed)
    }

    fn save(&self, entries: Vec<TrustEntry>) -> Result<(), TrustError> {
        let file = TrustFile {
            version: 1,
            entries,
        };
        let err = |reason: String| TrustError::File {
            path: self.path.clone(),
            reason,
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| err(e.to_string()))?;
        // NamedTempFile is created 0600, and the rename keeps that mode.
        super::write_atomically(&self.path, &bytes).map_err(|e| err(format!("{e:#}")))
    }

    /// Records a new invite valid for `ttl` and returns its secret and expiry
    /// (Unix seconds). At most [`MAX_PENDING_INVITES`] stay pending (the
    /// oldest is dropped).
    pub fn create_invite(&self, ttl: Duration) -> ([u8; 16], u64) {
        let mut secret = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
        let expires_unix_s = unix_ms() / 1000 + ttl.as_secs().max(1);
        let mut inv = lock(&self.invites);
        prune_expired(&mut inv.0, unix_ms() / 1000);
        if inv.0.pending.len() >= MAX_PENDING_INVITES {
            inv.0.pending.remove(0);
        }
        inv.0.pending.push(PendingInvite {
            secret,
            expires_unix_s,
        });
        (secret, expires_unix_s)
    }

    /// Whether an unexpired invite is pending (then unknown keys pass the
    /// handshake, on probation).
    pub fn invite_pending(&self) -> bool {
        let now_s = unix_ms() / 1000;
        lock(&self.invites)
            .0
            .pending
            .iter()
            .any(|i| i.expires_unix_s > now_s)
    }

    /// Consumes the pending invite whose secret is `secret` (one code, one
    /// join).
    ///
    /// # Errors
    /// [`JoinRefusal`]: unknown, expired or already used.
    pub fn redeem(&self, secret: &[u8]) -> Result<(), JoinRefusal> {
        let now_s = unix_ms() / 1000;
        let mut inv = lock(&self.invites);
        prune_expired(&mut inv.0, now_s);
        let same = |s: &[u8; 16]| ct_eq(s, secret);
        if let Some(i) = inv.0.pending.iter().position(|p| same(&p.secret)) {
            let p = inv.0.pending.remove(i);
            push_bounded(&mut inv.0.used, p.secret);
            return Ok(());
        }
        if inv.0.used.iter().any(same) {
            Err(JoinRefusal::Used)
        } else if inv.0.expired.iter().any(same) {
            Err(JoinRefusal::Expired)
        } else {
            Err(JoinRefusal::Unknown)
        }
    }

    /// Counts a refused key and logs it, at most once per back-off period
    /// per key (10 s doubling to 1 h).
    fn refuse_untrusted(&self, peer: &PeerCertificate) {
        self.refused_untrusted.fetch_add(1, Ordering::Relaxed);
        let key = NodeKey(peer.public_key);
        let now = Instant::now();
        let mut m = lock(&self.log_backoff);
        if m.len() >= MAX_LOG_KEYS && !m.contains_key(&key) {
            m.clear();
        }
        let (next, backoff) = m.entry(key).or_insert((now, LOG_BACKOFF_MIN / 2));
        if now >= *next {
            *backoff = (*backoff * 2).min(LOG_BACKOFF_MAX);
            *next = now + *backoff;
            warn!(key = %key, node = %peer.node_id, "refused a peer whose key is not trusted (private mode; next log about it in {:?} at the earliest)", backoff);
        }
    }

    /// Counters for `spore status`: `refused_untrusted`, `refused_join`,
    /// `joined`.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        [
            ("refused_untrusted", &self.refused_untrusted),
            ("refused_join", &self.refused_join),
            ("joined", &self.joined),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.load(Ordering::Relaxed)))
        .collect()
    }
}

impl PeerTrust for TrustState {
    fn check(&self, peer: &PeerCertificate) -> Result<(), String> {
        if self.mode == TrustMode::Open || self.is_trusted(&NodeKey(peer.public_key)) {
            return Ok(());
        }
        if self.invite_pending() {
            // On probation: the contact must start with a valid Join.
            return Ok(());
        }
        self.refuse_untrusted(peer);
        Err("key not in the trust list of a private node".into())
    }
}

fn check_name(n: &str) -> Result<(), TrustError> {
    if n.is_empty() || n.len() > MAX_NAME_BYTES || n.parse::<NodeKey>().is_ok() {
        return Err(TrustError::BadName(n.chars().take(80).collect()));
    }
    Ok(())
}

fn prune_expired(inv: &mut Invites, now_s: u64) {
    let (live, dead): (Vec<_>, Vec<_>) = std::mem::take(&mut inv.pending)
        .into_iter()
        .partition(|i| i.expires_unix_s > now_s);
    inv.pending = live;
    for d in dead {
        push_bounded(&mut inv.expired, d.secret);
    }
}

fn push_bounded(q: &mut VecDeque<[u8; 16]>, s: [u8; 16]) {
    if q.len() >= MAX_USED_SECRETS {
        q.pop_front();
    }
    q.push_back(s);
}

/// Compares without an early exit (secrets are compared to attacker input).
fn ct_eq(a: &[u8; 16], b: &[u8]) -> bool {
    b.len() == a.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(dir: &Path, mode: TrustMode) -> TrustState {
        let cfg = TrustConfig {
            mode,
            ..TrustConfig::default()
        };
        TrustState::open(dir, &cfg, [9; 32]).unwrap()
    }

    fn peer(k: u8) -> PeerCertificate {
        PeerCertificate {
            public_key: [k; 32],
            node_id: "dtn://p/".into(),
        }
    }

    #[test]
    fn private_mode_admits_listed_keys_only_and_counts() {
        let d = tempfile::tempdir().unwrap();
        let t = state(d.path(), TrustMode::Private);
        assert!(t.check(&peer(1)).is_err());
        t.add(NodeKey([1; 32]), Some("one".into()), None).unwrap();
        assert!(t.check(&peer(1)).is_ok());
        assert!(t.check(&peer(2)).is_err());
        assert_eq!(t.refused_untrusted.load(Ordering::Relaxed), 2);
        assert!(state(d.path(), TrustMode::Open).check(&peer(2)).is_ok());
    }

    #[test]
    fn list_survives_reopen_with_mode_0600_and_removes_by_name() {
        let d = tempfile::tempdir().unwrap();
        let t = state(d.path(), TrustMode::Private);
        t.add(NodeKey([1; 32]), Some("one".into()), None).unwrap();
        t.add(NodeKey([2; 32]), None, Some("dtn://two/".into()))
            .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(d.path().join(TRUST_FILE)).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o600);
        }
        let t = state(d.path(), TrustMode::Private);
        assert_eq!(t.list().len(), 2);
        assert_eq!(t.remove("one").unwrap().len(), 1);
        assert_eq!(t.remove(&NodeKey([2; 32]).to_string()).unwrap().len(), 1);
        assert!(t.remove("nobody").unwrap().is_empty());
        assert!(state(d.path(), TrustMode::Private).list().is_empty());
    }

    #[test]
    fn invite_admits_on_probation_and_is_used_once() {
        let d = tempfile::tempdir().unwrap();
        let t = state(d.path(), TrustMode::Private);
        let (secret, _) = t.create_invite(Duration::from_secs(60));
        assert!(t.check(&peer(3)).is_ok(), "probation while pending");
        assert_eq!(t.redeem(&[0; 16]), Err(JoinRefusal::Unknown));
        assert_eq!(t.redeem(&secret), Ok(()));
        assert_eq!(t.redeem(&secret), Err(JoinRefusal::Used));
        assert!(t.check(&peer(3)).is_err(), "no invite pending any more");
    }

    #[test]
    fn bad_keys_and_names_are_refused() {
        assert!("abc".parse::<NodeKey>().is_err());
        assert!("zz".repeat(32).parse::<NodeKey>().is_err());
        let d = tempfile::tempdir().unwrap();
        let t = state(d.path(), TrustMode::Open);
        let long = "x".repeat(65);
        assert!(t.add(NodeKey([1; 32]), Some(long), None).is_err());
        assert!(t.add(NodeKey([1; 32]), Some(String::new()), None).is_err());
        std::fs::write(d.path().join(TRUST_FILE), b"{not json").unwrap();
        let cfg = TrustConfig::default();
        assert!(TrustState::open(d.path(), &cfg, [0; 32]).is_err());
    }
}
