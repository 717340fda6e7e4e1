//! Free loopback ports, readiness by TCP connect, and which sockets a process listens on.
//!
//! Ports come from the kernel (bind to `127.0.0.1:0`) and are remembered so two servers of one test
//! process never get the same one; another process may still grab a port between our probe and the
//! daemon's bind, which at worst fails one start with a clear error. [`listening_sockets`] reads
//! `/proc` so a test can prove that nothing the bed started listens outside loopback.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A TCP port on 127.0.0.1 that was free a moment ago and not yet handed out by this process.
pub fn free_port() -> Result<u16> {
    let mut handed = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let handed = handed.get_or_insert_with(HashSet::new);
    for _ in 0..50 {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
        let port = listener
            .local_addr()
            .context("reading bound address")?
            .port();
        if handed.insert(port) {
            return Ok(port);
        }
    }
    bail!("no free loopback port found")
}

/// A loopback port where every connection is refused, for as long as the value lives. The socket is
/// bound but never listens, so the kernel answers a connection with a reset; and since it has no
/// `SO_REUSEADDR`, no server can bind the port meanwhile. A port that was merely free a moment ago is not
/// enough: a server another test starts in parallel can take it, and the test then meets that server
/// instead of a refusal.
pub struct RefusedPort {
    _socket: socket2::Socket,
    port: u16,
}

impl RefusedPort {
    /// Binds a fresh loopback port without listening on it.
    pub fn new() -> Result<Self> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .context("creating a TCP socket")?;
        socket
            .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .context("binding 127.0.0.1:0")?;
        let port = socket
            .local_addr()
            .context("reading bound address")?
            .as_socket()
            .context("bound address is not IP")?
            .port();
        Ok(RefusedPort {
            _socket: socket,
            port,
        })
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// The TCP addresses process `pid` listens on (IPv4 and IPv6), from `/proc/<pid>/fd` and
/// `/proc/net/tcp{,6}`.
pub fn listening_sockets(pid: u32) -> Result<Vec<SocketAddr>> {
    let mut inodes = HashSet::new();
    let fd_dir = format!("/proc/{pid}/fd");
    for entry in std::fs::read_dir(&fd_dir).with_context(|| format!("reading {fd_dir}"))? {
        let Ok(entry) = entry else { continue };
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let target = target.to_string_lossy();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
            {
                inodes.insert(inode.to_owned());
            }
        }
    }
    let mut listening = listening_table()?;
    Ok(inodes
        .iter()
        .filter_map(|inode| listening.remove(inode))
        .collect())
}

/// All listening TCP sockets of the host's network namespace, by socket inode.
fn listening_table() -> Result<HashMap<String, SocketAddr>> {
    let mut table = HashMap::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if fields.len() < 10 || fields[3] != "0A" {
                continue;
            }
            if let Some(addr) = parse_proc_addr(fields[1]) {
                table.insert(fields[9].to_owned(), addr);
            }
        }
    }
    Ok(table)
}

/// Parses `/proc/net/tcp`'s `0100007F:1F90` (IPv4) or 32-hex-digit IPv6 form: the address is stored
/// as 32-bit words in host (little-endian) order, the port in big-endian hex.
fn parse_proc_addr(field: &str) -> Option<SocketAddr> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..addr.len() / 8)
        .map(|i| u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let ip = match words.as_slice() {
        [a] => IpAddr::V4(Ipv4Addr::from(a.to_le_bytes())),
        [_, _, _, _] => {
            let mut bytes = [0u8; 16];
            for (i, w) in words.iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_addresses() {
        assert_eq!(
            parse_proc_addr("0100007F:1F90"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            parse_proc_addr("00000000:0016"),
            Some("0.0.0.0:22".parse().unwrap())
        );
        assert_eq!(
            parse_proc_addr("00000000000000000000000001000000:0016"),
            Some("[::1]:22".parse().unwrap())
        );
    }

    #[test]
    fn a_refused_port_refuses_and_cannot_be_taken() {
        let refused = RefusedPort::new().unwrap();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, refused.port()));
        let err = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
        // std's listener sets SO_REUSEADDR, as sshd and Werkzeug do: still refused the port.
        assert!(TcpListener::bind(addr).is_err());
    }

    #[test]
    fn finds_our_own_listener() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let found = listening_sockets(std::process::id()).unwrap();
        assert!(found.contains(&addr), "{found:?}");
        assert!(port_open(addr.port()));
    }

    #[test]
    fn free_ports_are_distinct() {
        let a = free_port().unwrap();
        let b = free_port().unwrap();
        assert_ne!(a, b);
    }
}
