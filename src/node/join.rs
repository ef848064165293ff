//! The invite/join exchange over the first contact (spec/trust.md §"Join").
//!
//! Joiner: trusts the inviter's key from the code, dials it, checks the key,
//! sends `Join { secret }` first and waits for `JoinAccepted` (or the close
//! reason), then hangs up and keeps the inviter as a dial target.
//! Inviter: a contact accepted from an unknown key in private mode stays on
//! probation (not registered, no bundles either way) until its first control
//! message, which must be a valid `Join`.

use super::Shared;
use super::contacts::{add_dialer, save_dial_file};
use super::invite::{InviteCode, InviteCodeError};
use super::proto::ControlMessage;
use super::trust::{NodeKey, TrustError, TrustMode, unix_ms};
use crate::cla::ClaError;
use crate::cla::quic::Contact;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tracing::{info, warn};

/// Why `spore join` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The code cannot be read.
    #[error(transparent)]
    Code(#[from] InviteCodeError),
    /// The code's expiry has passed (seconds ago).
    #[error("the invite code expired {0} s ago; ask the inviter for a new one")]
    Expired(u64),
    /// The code was made by this node.
    #[error("this invite code was made by this node")]
    Own,
    /// No contact could be opened with any address of the code.
    #[error(
        "cannot open a contact with the inviter ({0}); a refused handshake means the \
         inviter no longer accepts this code (already used, expired, or it restarted)"
    )]
    Unreachable(String),
    /// The node at the address has another key than the code says.
    #[error("the node at {0} is not the inviter (its key differs from the code's)")]
    WrongKey(SocketAddr),
    /// The inviter closed the contact with this reason.
    #[error("the inviter refused: {0}")]
    Refused(String),
    /// The trust list cannot be updated.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The inviter cannot be kept as a dial target.
    #[error("joined, but the inviter cannot be added as a peer: {0}")]
    Dial(String),
}

/// A successful join.
#[derive(Debug, serde::Serialize)]
pub struct Joined {
    /// The inviter's node ID.
    pub inviter: String,
    /// The inviter's key.
    pub key: NodeKey,
    /// The address that answered.
    pub addr: SocketAddr,
}

/// Inviter side, before a contact is registered: returns whether it may go
/// on. Open mode and trusted keys pass at once; an untrusted accepted peer
/// (admitted by a pending invite) must send a valid `Join` first, within
/// `join_timeout`, or the contact is closed and counted (`refused_join`).
pub(crate) async fn admit(shared: &Arc<Shared>, c: &Contact) -> bool {
    let t = &shared.trust;
    if t.mode() == TrustMode::Open || t.is_trusted(&NodeKey(c.peer_key())) {
        return true;
    }
    if c.is_dialer() {
        // Only peers that dial us may join; ours passed the handshake only
        // because an invite is pending.
        c.close("peer not trusted");
        return false;
    }
    let Some(_slot) = ProbationSlot::take(&t.on_probation) else {
        return refuse(shared, c, "join refused: too many peers on probation");
    };
    let first = tokio::time::timeout(t.join_timeout, c.recv_control::<ControlMessage>()).await;
    match first {
        Ok(Ok(ControlMessage::Join { secret })) => accept_join(shared, c, &secret).await,
        Ok(Ok(_)) => refuse(
            shared,
            c,
            "join refused: an untrusted peer must send Join first",
        ),
        Ok(Err(e)) => refuse(shared, c, &format!("join refused: {e}")),
        Err(_) => refuse(shared, c, "join refused: no Join in time"),
    }
}

/// Most contacts on probation (waiting for their `Join`) at once; more
/// are refused and counted (`refused_join`), so a pending invite cannot be
/// used to hold many connections open.
pub const MAX_PROBATION_CONTACTS: usize = 8;

/// One of the [`MAX_PROBATION_CONTACTS`] slots of a counter, released on
/// drop.
struct ProbationSlot<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> ProbationSlot<'a> {
    fn take(n: &'a std::sync::atomic::AtomicUsize) -> Option<ProbationSlot<'a>> {
        if n.fetch_add(1, Ordering::AcqRel) >= MAX_PROBATION_CONTACTS {
            n.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(ProbationSlot(n))
    }
}

impl Drop for ProbationSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Inviter side: checks a `Join` secret; on success trusts the peer's key
/// and answers `JoinAccepted`, otherwise closes the contact with the reason.
/// Returns whether the peer was admitted.
pub(crate) async fn accept_join(shared: &Arc<Shared>, c: &Contact, secret: &[u8]) -> bool {
    let key = NodeKey(c.peer_key());
    if let Err(r) = shared.trust.redeem(secret) {
        return refuse(shared, c, &r.to_string());
    }
    let node_id = c.peer_node_id().to_owned();
    if let Err(e) = shared.trust.add(key, None, Some(node_id.clone())) {
        warn!(error = %e, "cannot store a joined key");
        c.close("join failed: the inviter cannot store its trust list");
        return false;
    }
    shared.trust.joined.fetch_add(1, Ordering::Relaxed);
    info!(peer = %node_id, key = %key, "a node joined with an invite; its key is trusted");
    c.send_control(&ControlMessage::JoinAccepted).await.is_ok()
}

/// A `Join` on an admitted contact (open mode, or a key already trusted):
/// an already trusted key is answered `JoinAccepted` without using the
/// code; otherwise as [`accept_join`]. Returns whether the contact goes on.
pub(crate) async fn join_on_contact(shared: &Arc<Shared>, c: &Contact, secret: &[u8]) -> bool {
    if shared.trust.is_trusted(&NodeKey(c.peer_key())) {
        return c.send_control(&ControlMessage::JoinAccepted).await.is_ok();
    }
    accept_join(shared, c, secret).await
}

fn refuse(shared: &Shared, c: &Contact, reason: &str) -> bool {
    shared.trust.refused_join.fetch_add(1, Ordering::Relaxed);
    warn!(peer = %c.peer_node_id(), addr = %c.remote_addr(), reason, "refused a join");
    c.close(reason);
    false
}

/// Joiner side: runs the whole join for invite code `text` (see the module
/// docs). On failure a key this call added to the trust list is removed.
///
/// # Errors
/// [`JoinError`]: bad or expired code, inviter unreachable or refusing,
/// trust list or dial file not writable.
pub(crate) async fn join(shared: &Arc<Shared>, text: &str) -> Result<Joined, JoinError> {
    let code = InviteCode::decode(text)?;
    let now_s = unix_ms() / 1000;
    if code.expires_unix_s <= now_s {
        return Err(JoinError::Expired(now_s - code.expires_unix_s));
    }
    if code.key == shared.trust.own_key() {
        return Err(JoinError::Own);
    }
    let newly = shared.trust.add(code.key, None, None)?;
    let r = join_inviter(shared, &code).await;
    if r.is_err() && newly {
        let _ = shared.trust.remove(&code.key.to_string());
    }
    r
}

async fn join_inviter(shared: &Arc<Shared>, code: &InviteCode) -> Result<Joined, JoinError> {
    let (c, addr) = dial_any(shared, &code.addrs).await?;
    if c.peer_key() != code.key.0 {
        c.close("not the inviter");
        return Err(JoinError::WrongKey(addr));
    }
    let exchange = async {
        let join = ControlMessage::Join {
            secret: code.secret.to_vec(),
        };
        c.send_control(&join).await?;
        loop {
            // In open mode the inviter's Summary may come first: skip it.
            if let ControlMessage::JoinAccepted = c.recv_control::<ControlMessage>().await? {
                return Ok::<(), ClaError>(());
            }
        }
    };
    match tokio::time::timeout(shared.trust.join_timeout, exchange).await {
        Ok(Ok(())) => {}
        Ok(Err(ClaError::ClosedByPeer { reason, .. })) => return Err(JoinError::Refused(reason)),
        Ok(Err(e)) => return Err(JoinError::Refused(e.to_string())),
        Err(_) => {
            c.close("no answer to Join");
            return Err(JoinError::Refused("no answer in time".into()));
        }
    }
    let inviter = c.peer_node_id().to_owned();
    shared.trust.add(code.key, None, Some(inviter.clone()))?;
    c.close("joined");
    info!(inviter = %inviter, %addr, "joined with an invite; the inviter is now a peer");
    add_dialer(shared, addr).map_err(|e| JoinError::Dial(format!("{e:#}")))?;
    save_dial_file(shared).map_err(|e| JoinError::Dial(format!("{e:#}")))?;
    Ok(Joined {
        inviter,
        key: code.key,
        addr,
    })
}

async fn dial_any(
    shared: &Arc<Shared>,
    addrs: &[SocketAddr],
) -> Result<(Contact, SocketAddr), JoinError> {
    let mut errors = Vec::new();
    for &a in addrs {
        match shared.cla.connect(a).await {
            Ok(c) => return Ok((c, a)),
            Err(e) => errors.push(format!("{a}: {e}")),
        }
    }
    Err(JoinError::Unreachable(errors.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probation_slots_are_bounded_and_released() {
        let n = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<_> = (0..MAX_PROBATION_CONTACTS)
            .map(|_| ProbationSlot::take(&n).expect("a free slot"))
            .collect();
        assert!(ProbationSlot::take(&n).is_none(), "full");
        drop(slots);
        assert_eq!(n.load(Ordering::Acquire), 0);
        assert!(ProbationSlot::take(&n).is_some());
    }
}
