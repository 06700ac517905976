//! Network namespaces for the harness's clusters, used when running as root
//! where `ip netns` works: a bridge in the root namespace and one namespace
//! per cluster joined to it by a veth pair. Each gateway then has its own
//! network stack, and a cluster is partitioned by taking its link down.
//! The API, etcd and the echo backends stay in the root namespace, on the
//! bridge's address. Everything is removed on drop; namespaces left behind
//! by a killed test process are removed by the next run.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);
static LINKS: AtomicU32 = AtomicU32::new(0);

/// Every name starts with this, then the owning process id.
const PREFIX: &str = "cwe";

/// The bridge and the namespaces of one federation.
#[derive(Debug)]
pub struct Network {
    bridge: String,
    net: [u8; 2],
    namespaces: Vec<Namespace>,
}

/// One cluster's namespace.
#[derive(Debug)]
struct Namespace {
    name: String,
    host_link: String,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

/// The process id in a harness name (`cwe<pid><letter>...`), if it is one.
fn owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Removes namespaces and links of harness processes that no longer run.
fn remove_stale() {
    let dead = |name: &str| {
        owner(name).is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
    };
    if let Ok(out) = Command::new("ip").args(["netns", "list"]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            if dead(name) {
                let _ = ip(&["netns", "del", name]);
            }
        }
    }
    if let Ok(out) = Command::new("ip").args(["-o", "link", "show"]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "7: cwe123h4@if6: <...>" -> "cwe123h4"
            let name = line.split(':').nth(1).unwrap_or("").trim();
            let name = name.split('@').next().unwrap_or("");
            if dead(name) {
                let _ = ip(&["link", "del", name]);
            }
        }
    }
}

impl Network {
    /// A bridge and `clusters` namespaces, or `None` when namespaces cannot
    /// be used here (not root, no `ip`, or the kernel refuses); the harness
    /// then uses loopback addresses.
    pub fn create(clusters: usize) -> Option<Self> {
        if std::env::var_os("CAUSEWAY_E2E_NO_NETNS").is_some() || !is_root() {
            return None;
        }
        remove_stale();
        match Self::try_create(clusters) {
            Ok(n) => Some(n),
            Err(e) => {
                eprintln!("causeway-e2e: network namespaces unavailable ({e}); using loopback");
                None
            }
        }
    }

    fn try_create(clusters: usize) -> anyhow::Result<Self> {
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // 10.(100 + pid % 100).(n % 250).0/24: distinct per federation.
        let net = [100 + (pid % 100) as u8, (n % 250) as u8];
        let bridge = format!("{PREFIX}{pid}b{}", n % 1000);
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        let mut network = Self {
            bridge,
            net,
            namespaces: Vec::new(),
        };
        let host = format!("{}/24", network.host_ip());
        ip(&["addr", "add", &host, "dev", &network.bridge])?;
        ip(&["link", "set", &network.bridge, "up"])?;
        for i in 0..clusters {
            let name = format!("{PREFIX}{pid}n{n}c{i}");
            // Link names have at most 15 characters: cwe + pid + h/p + k.
            let k = LINKS.fetch_add(1, Ordering::Relaxed) % 1000;
            let host_link = format!("{PREFIX}{pid}h{k}");
            let ns_link = format!("{PREFIX}{pid}p{k}");
            ip(&["netns", "add", &name])?;
            network.namespaces.push(Namespace {
                name: name.clone(),
                host_link: host_link.clone(),
            });
            ip(&[
                "link", "add", &host_link, "type", "veth", "peer", "name", &ns_link,
            ])?;
            ip(&["link", "set", &ns_link, "netns", &name])?;
            ip(&["link", "set", &host_link, "master", &network.bridge])?;
            ip(&["link", "set", &host_link, "up"])?;
            let addr = format!("{}/24", network.cluster_ip(i));
            let exec = ["netns", "exec", &name, "ip"];
            let run = |args: &[&str]| ip(&[&exec[..], args].concat());
            run(&["addr", "add", &addr, "dev", &ns_link])?;
            run(&["link", "set", &ns_link, "up"])?;
            run(&["link", "set", "lo", "up"])?;
        }
        Ok(network)
    }

    /// The bridge's address in the root namespace (API, etcd, backends).
    pub fn host_ip(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, self.net[0], self.net[1], 1))
    }

    /// The address of cluster `i` inside its namespace.
    pub fn cluster_ip(&self, i: usize) -> IpAddr {
        let last = u8::try_from(10 + i % 240).unwrap_or(10);
        IpAddr::V4(Ipv4Addr::new(10, self.net[0], self.net[1], last))
    }

    /// The namespace of cluster `i`.
    pub fn namespace(&self, i: usize) -> Option<&str> {
        self.namespaces.get(i).map(|n| n.name.as_str())
    }

    /// Cuts cluster `i` off the network (`true`) or reconnects it.
    pub fn partition(&self, i: usize, cut: bool) -> anyhow::Result<()> {
        let ns = self
            .namespaces
            .get(i)
            .ok_or_else(|| anyhow::anyhow!("no namespace {i}"))?;
        ip(&[
            "link",
            "set",
            &ns.host_link,
            if cut { "down" } else { "up" },
        ])
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = ip(&["link", "del", &ns.host_link]);
            let _ = ip(&["netns", "del", &ns.name]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}
