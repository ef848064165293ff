//! Which OS user owns the other end of a local TCP connection (Linux), so
//! the local API can refuse other users even if they got hold of the token.
//!
//! `/proc/net/tcp` and `/proc/net/tcp6` list every TCP socket of the network
//! namespace with its local and remote address and owning uid; the client's
//! socket is the one whose local address is the connection's remote address
//! and whose remote address is the API's address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a connection is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerUidError {
    /// The connection belongs to another user.
    #[error(
        "the local API only serves its own OS user (uid {node}); this connection is uid {client}"
    )]
    OtherUser {
        /// The client's uid.
        client: u32,
        /// The node's uid.
        node: u32,
    },
    /// The owner cannot be found (the socket is gone, or /proc is missing).
    #[error("cannot tell which OS user opened this connection: {0}")]
    Unknown(String),
}

/// Checks that the TCP connection from `client` to `api` belongs to the
/// user running this process.
///
/// # Errors
/// [`PeerUidError::OtherUser`], or [`PeerUidError::Unknown`] when it cannot
/// be determined (refused too: fail closed).
pub fn check_same_user(client: SocketAddr, api: SocketAddr) -> Result<(), PeerUidError> {
    use std::os::unix::fs::MetadataExt;
    let node = std::fs::metadata("/proc/self")
        .map_err(|e| PeerUidError::Unknown(format!("/proc/self: {e}")))?
        .uid();
    let uid = socket_uid(client, api)?;
    if uid == node {
        Ok(())
    } else {
        Err(PeerUidError::OtherUser { client: uid, node })
    }
}

/// Who opened one API connection: the result of [`check_same_user`],
/// taken once when the connection is accepted (axum's [`Connected`] hook),
/// so the requests of a kept-alive connection do not read `/proc/net/tcp`
/// again. Reading it walks the kernel's whole TCP hash table, some
/// milliseconds per read on a host with much memory, which a client
/// polling the API every 100 ms would otherwise pay on every request.
///
/// [`Connected`]: axum::extract::connect_info::Connected
#[derive(Clone, Debug)]
pub struct ConnectionUser(pub Result<(), PeerUidError>);

impl<'a>
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, tokio::net::TcpListener>>
    for ConnectionUser
{
    fn connect_info(stream: axum::serve::IncomingStream<'a, tokio::net::TcpListener>) -> Self {
        let client = *stream.remote_addr();
        ConnectionUser(match stream.io().local_addr() {
            Ok(api) => check_same_user(client, api),
            Err(e) => Err(PeerUidError::Unknown(format!("API socket address: {e}"))),
        })
    }
}

fn socket_uid(client: SocketAddr, api: SocketAddr) -> Result<u32, PeerUidError> {
    let mut errors = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match std::fs::read_to_string(table) {
            Ok(text) => {
                if let Some(uid) = find_uid(&text, client, api) {
                    return Ok(uid);
                }
            }
            Err(e) => errors.push(format!("{table}: {e}")),
        }
    }
    errors.push(format!("no socket {client} -> {api}"));
    Err(PeerUidError::Unknown(errors.join("; ")))
}

/// The uid of the line of a `/proc/net/tcp{,6}` table whose local address is
/// `local` and remote address is `remote`.
fn find_uid(table: &str, local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    let canon = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (local, remote) = (canon(local), canon(remote));
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let l = parse_addr(f.get(1)?)?;
        let r = parse_addr(f.get(2)?)?;
        (canon(l) == local && canon(r) == remote)
            .then(|| f.get(7)?.parse().ok())
            .flatten()
    })
}

/// Parses `0100007F:1F90` (IPv4) or 32 hex digits `:PORT` (IPv6): the
/// address as 32-bit words in host byte order, the port in hex.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_owner_of_our_own_connection() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let api = l.local_addr().unwrap();
        let c = std::net::TcpStream::connect(api).unwrap();
        let (_s, client) = l.accept().unwrap();
        assert_eq!(client, c.local_addr().unwrap());
        assert_eq!(check_same_user(client, api), Ok(()));
        let gone: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(matches!(
            check_same_user(gone, api),
            Err(PeerUidError::Unknown(_))
        ));
    }

    /// The owner is looked up when axum accepts the connection, and every
    /// request of a kept-alive connection sees that result.
    #[tokio::test]
    async fn a_kept_alive_api_connection_carries_its_owner() {
        use axum::extract::ConnectInfo;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(|ConnectInfo(u): ConnectInfo<ConnectionUser>| async move {
                format!("owner {:?}]", u.0)
            }),
        );
        let server = tokio::spawn(async move {
            let app = app.into_make_service_with_connect_info::<ConnectionUser>();
            axum::serve(l, app).await
        });
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        let mut seen = String::new();
        for i in 1..=2 {
            c.write_all(req).await.unwrap();
            // Until this response's body (it ends in ']') is in.
            while seen.matches(']').count() < i {
                let mut buf = [0u8; 512];
                let n = c.read(&mut buf).await.unwrap();
                assert!(n > 0, "connection closed after: {seen}");
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
        server.abort();
        assert_eq!(seen.matches("200 OK").count(), 2, "{seen}");
        assert_eq!(seen.matches("owner Ok(())]").count(), 2, "{seen}");
    }

    #[test]
    fn parses_proc_lines() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
            0: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 20 4 30 10 -1\n";
        let local = SocketAddr::new(Ipv4Addr::from(0x0100007Fu32.to_ne_bytes()).into(), 0x1F90);
        let remote = SocketAddr::new(Ipv4Addr::from(0x0100007Fu32.to_ne_bytes()).into(), 0xD431);
        assert_eq!(find_uid(table, local, remote), Some(1000));
        assert_eq!(find_uid(table, remote, local), None);
        assert!(parse_addr("zz:1").is_none());
    }
}
