//! Loopback addresses and free ports. Every federation gets its own
//! `127.B.C.0/24` (B from the process id, C from a per-process counter), each
//! cluster its own address in it, so that the ports a federation reserves and
//! releases (and rebinds when a process restarts) cannot be taken by another
//! federation running concurrently. Ports are picked by the kernel (bind to
//! port 0, then release for the child to bind).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The loopback subnet of one federation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    b: u8,
    c: u8,
}

impl Subnet {
    /// A subnet no other federation of this process uses (and, by the
    /// process id, most likely none of another process).
    pub fn allocate() -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let b = 100 + (std::process::id() % 100) as u8;
        let c = (n % 250) as u8 + 1;
        Self { b, c }
    }

    /// The address of the API replicas: `127.B.C.2`.
    pub fn api_ip(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, self.b, self.c, 2))
    }

    /// The address of the `index`-th cluster: `127.B.C.(10 + index)`.
    pub fn cluster_ip(&self, index: usize) -> IpAddr {
        let last = u8::try_from(10 + index % 240).unwrap_or(10);
        IpAddr::V4(Ipv4Addr::new(127, self.b, self.c, last))
    }
}

/// A free TCP port on `ip` (bound, then released for the child to bind).
pub fn free_addr(ip: IpAddr) -> anyhow::Result<SocketAddr> {
    free_addrs(ip, 1)?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no free port"))
}

/// `n` distinct free TCP ports on `ip` (all held until every one is picked).
/// For an address of another network namespace (not bindable here) the
/// ports are picked on loopback: that namespace belongs to one cluster and
/// has nothing else listening.
pub fn free_addrs(ip: IpAddr, n: usize) -> anyhow::Result<Vec<SocketAddr>> {
    let bind_ip = match TcpListener::bind(SocketAddr::new(ip, 0)) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
        _ => ip,
    };
    let held = (0..n)
        .map(|_| TcpListener::bind(SocketAddr::new(bind_ip, 0)))
        .collect::<Result<Vec<_>, _>>()?;
    held.iter()
        .map(|l| Ok(SocketAddr::new(ip, l.local_addr()?.port())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_differ_and_addresses_bind() {
        let a = Subnet::allocate();
        let b = Subnet::allocate();
        assert_ne!(a, b);
        assert_ne!(a.cluster_ip(0), b.cluster_ip(0));
        let addrs = free_addrs(a.cluster_ip(3), 3).unwrap_or_default();
        assert_eq!(addrs.len(), 3);
        assert!(addrs[0] != addrs[1] && addrs[1] != addrs[2] && addrs[0] != addrs[2]);
    }
}
