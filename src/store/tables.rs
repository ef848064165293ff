//! Every redb table of the store, declared once, with versioned names.
//!
//! A name ends in `-N`; a change of a key or value layout gets a new `N`
//! and a migration in [`super::Store::open`] (none exist yet: schema 0).
//! Keys written `BundleKey` are [`crate::bundle::BundleId::to_key`] bytes;
//! `Cid` keys are binary CIDv1 bytes. Values written `Cbor<T>` are
//! serde_cbor encodings of the record types in [`super::records`].
//! See spec/store.md for the invariants that tie the tables together.

use redb::{MultimapTableDefinition, TableDefinition};

/// Schema version written to [`META`] under `"schema"`.
pub const SCHEMA_VERSION: u64 = 0;

/// BundleKey → `Cbor<BundleRecord>`: one record per bundle ever seen here
/// (state, custodian, history). Records outlive the bundle's bytes.
pub const BUNDLES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bundles-0");

/// BundleKey → encoded bundle (RFC 9171 bytes). For a chunk bundle the payload
/// block is stored empty and the bytes live once in [`CHUNKS`].
/// Present iff the bundle's state is `stored` or `in_flight` (or it is a
/// delivered chunk still waiting for reassembly, see [`INBOX_CHUNKS`]).
pub const BUNDLE_BYTES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bundle-bytes-0");

/// Cid → (reference count, chunk bytes). A chunk shared by many bundles or
/// files is stored once; the row is removed when the count reaches 0.
pub const CHUNKS: TableDefinition<&[u8], (u64, &[u8])> = TableDefinition::new("chunks-0");

/// Cid → (reference count, segment id, offset, length): a chunk of
/// [`super::blobs::BLOB_MIN_BYTES`] or more, whose bytes live in a segment
/// file beside the database (spec/store.md §Blob segments). A CID is in
/// this table or in [`CHUNKS`], never both.
pub const CHUNK_BLOBS: TableDefinition<&[u8], (u64, u64, u64, u64)> =
    TableDefinition::new("chunk-blobs-0");

/// Segment id → bytes of live chunks in it. A segment file whose count is
/// 0 (or that has no row) holds nothing referenced and is removed.
pub const BLOB_SEGMENTS: TableDefinition<u64, u64> = TableDefinition::new("blob-segments-0");

/// Cid → BundleKey of the latest chunk bundle carrying that CID (for file status).
pub const CID_BUNDLES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("cid-bundles-0");

/// (expiry DTN ms, BundleKey) → (): every bundle whose bytes or chunk
/// reference are still held, ordered by expiry time.
pub const EXPIRY: TableDefinition<(u64, &[u8]), ()> = TableDefinition::new("expiry-0");

/// BundleKey → (): bundles this node holds in custody and may forward
/// (state `stored` or `in_flight`). "What do I owe peer X" starts here.
pub const HELD: TableDefinition<&[u8], ()> = TableDefinition::new("held-0");

/// (peer node ID, BundleKey) → DTN ms: bundles already given to a peer
/// (per-peer forwarding state), so they are not offered to it again.
pub const FORWARDED: TableDefinition<(&str, &[u8]), u64> = TableDefinition::new("forwarded-0");

/// BundleKey → DTN ms of delivery: a bundle is delivered at most once.
pub const DELIVERED: TableDefinition<&[u8], u64> = TableDefinition::new("delivered-0");

/// (DTN ms, BundleKey) → (): when a [`DELIVERED`] entry may be dropped: the
/// bundle's expiry plus a grace period, after which any late copy is refused
/// as expired anyway. Keeps the delivered table (and its in-memory index)
/// from growing for ever. Bundles whose expiry comes from a bundle age
/// (creation time 0) have no entry here and are remembered.
pub const DELIVERED_FORGET: TableDefinition<(u64, &[u8]), ()> =
    TableDefinition::new("delivered-forget-0");

/// (DTN ms, BundleKey) → (): when a finished bundle record (not held:
/// custody transferred, delivered, expired, deleted) may be dropped from
/// [`BUNDLES`]: its expiry plus the record retention. A record held again
/// by then is kept (its row is just dropped). Records of bundles whose
/// expiry comes from a bundle age (creation time 0) get no row.
pub const RECORD_FORGET: TableDefinition<(u64, &[u8]), ()> =
    TableDefinition::new("record-forget-0");

/// Cid → BundleKey, multimap: delivered chunk bundles whose chunk is kept
/// (one reference each in [`CHUNKS`]) until their file is reassembled.
pub const INBOX_CHUNKS: MultimapTableDefinition<&[u8], &[u8]> =
    MultimapTableDefinition::new("inbox-chunks-0");

/// Peer node ID → `Cbor<PeerRecord>`.
pub const PEERS: TableDefinition<&str, &[u8]> = TableDefinition::new("peers-0");

/// Manifest Cid → `Cbor<FileRecord>`: files sent, relayed or received.
pub const FILES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("files-0");

/// Counter name → value (refusals by reason, bundles received, …).
pub const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters-0");

/// Key → value: `"schema"` (u64 BE), `"next_seq"` (u64 BE, creation timestamp sequence).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta-0");

/// Job BundleKey → job request payload (CBOR, spec/jobs.md): jobs delivered
/// here and not yet answered. Written in the transaction that delivers the
/// job bundle (before its custody signal), removed in the one that stores
/// its result bundle.
pub const JOBS_PENDING: TableDefinition<&[u8], &[u8]> = TableDefinition::new("jobs-pending-0");

/// (manifest Cid, holder node ID) → `Cbor<AssetRecord>`: other nodes believed
/// to hold a file complete, learned from asset adverts (spec/assets.md).
/// Bounded: the oldest rows (by `seen_ms`) are evicted past the configured
/// row limit ([`super::Txn::asset_evict`]).
pub const ASSETS: TableDefinition<(&[u8], &str), &[u8]> = TableDefinition::new("assets-0");
