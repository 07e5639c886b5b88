//! Task addresses on the bridge's subnet, leased the way CNI's host-local plugin keeps its
//! leases: a file per address in `/var/lib/cni/networks/<bridge>/` holding the task id,
//! `last_reserved_ip.0` naming the last address handed out, and the directory's `lock`
//! file held (flock) while an address is chosen. Leases made by host-local for tasks of an
//! earlier berth, and operators' habits of looking there, stay valid.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::{IFNAME, NetError};

/// Where host-local keeps the leases of every network.
pub const LEASE_ROOT: &str = "/var/lib/cni/networks";
/// host-local's name for the last address of its first (only) range.
const LAST_RESERVED: &str = "last_reserved_ip.0";
const LOCK: &str = "lock";

/// An IPv4 subnet: its network address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix_len: u8,
}

impl Subnet {
    /// `a.b.c.d/n`, with host bits allowed (and cleared), and room for a gateway and at
    /// least one task (n <= 30).
    pub fn parse(cidr: &str) -> Result<Subnet, NetError> {
        let bad = |why: &str| NetError::Subnet {
            subnet: cidr.to_string(),
            message: why.to_string(),
        };
        let (addr, len) = cidr
            .split_once('/')
            .ok_or_else(|| bad("not in CIDR notation (a.b.c.d/n)"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix_len: u8 = len
            .parse()
            .ok()
            .filter(|n| *n <= 30)
            .ok_or_else(|| bad("the prefix length must be at most 30"))?;
        let mask = mask(prefix_len);
        Ok(Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix_len,
        })
    }

    /// The first address, which the bridge takes.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix_len))
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix_len) == u32::from(self.network)
    }
}

fn mask(prefix_len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len))
        .unwrap_or(0)
}

/// The addresses a task may get, in the order host-local tries them: from the one after
/// `last` (the last reserved, if in the subnet) up to the one before broadcast, then
/// around from the one after the network address, ending with `last`. The gateway is
/// never one of them.
pub fn candidates(subnet: Subnet, last: Option<Ipv4Addr>) -> impl Iterator<Item = Ipv4Addr> {
    let first = u32::from(subnet.network) + 1;
    let end = u32::from(subnet.broadcast()) - 1;
    let gateway = subnet.gateway();
    let start = last
        .filter(|ip| subnet.contains(*ip))
        .map(u32::from)
        .filter(|ip| (first..=end).contains(ip))
        .map_or(first, |ip| if ip == end { first } else { ip + 1 });
    (start..=end)
        .chain(first..start)
        .map(Ipv4Addr::from)
        .filter(move |ip| *ip != gateway)
}

/// The first of [`candidates`] nobody holds.
pub fn next_free(
    subnet: Subnet,
    last: Option<Ipv4Addr>,
    taken: &HashSet<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    candidates(subnet, last).find(|ip| !taken.contains(ip))
}

/// What host-local writes in a lease: the container id and the interface name.
fn lease_content(task_id: &str) -> String {
    format!("{}\r\n{IFNAME}", task_id.trim())
}

/// Whether a lease file's content names `task_id`: as berth and host-local write it, or
/// as older host-local versions did (the id alone).
pub fn held_by(content: &str, task_id: &str) -> bool {
    let content = content.trim();
    content == task_id.trim() || content == lease_content(task_id)
}

/// The lease directory of the network named `bridge`.
pub fn dir(bridge: &str) -> PathBuf {
    Path::new(LEASE_ROOT).join(bridge)
}

/// Leases an address of `subnet` to `task_id` in `dir`.
pub fn acquire(dir: &Path, subnet: Subnet, task_id: &str) -> Result<Ipv4Addr, NetError> {
    let err = |source| NetError::Lease {
        dir: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let _lock = lock(dir).map_err(err)?;
    let last = std::fs::read_to_string(dir.join(LAST_RESERVED))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let taken: HashSet<Ipv4Addr> = std::fs::read_dir(dir)
        .map_err(err)?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    for ip in candidates(subnet, last).filter(|ip| !taken.contains(ip)) {
        let created = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(ip.to_string()));
        let mut file = match created {
            Ok(f) => f,
            // Someone without the lock (not host-local) took it meanwhile.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(err(e)),
        };
        if let Err(e) = file.write_all(lease_content(task_id).as_bytes()) {
            let _ = std::fs::remove_file(dir.join(ip.to_string()));
            return Err(err(e));
        }
        // Only a hint for where the next search starts, as for host-local.
        let _ = std::fs::write(dir.join(LAST_RESERVED), ip.to_string());
        return Ok(ip);
    }
    Err(NetError::NoFreeAddress {
        subnet: format!("{}/{}", subnet.network, subnet.prefix_len),
    })
}

/// Removes the leases held by `task_id` in `dir`. Idempotent.
pub fn release(dir: &Path, task_id: &str) -> Result<(), NetError> {
    let err = |source| NetError::Lease {
        dir: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(err(e)),
    };
    let _lock = lock(dir).map_err(err)?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.parse::<Ipv4Addr>().is_err() {
            continue;
        }
        let content = std::fs::read_to_string(entry.path()).unwrap_or_default();
        if held_by(&content, task_id) {
            match std::fs::remove_file(entry.path()) {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(err(e)),
                _ => {}
            }
        }
    }
    Ok(())
}

/// The directory's lock, as host-local takes it; released when dropped.
fn lock(dir: &Path) -> std::io::Result<Flock<File>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK))?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| e.into())
}
