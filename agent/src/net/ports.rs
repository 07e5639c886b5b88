//! Host ports of a task's port mappings: the ports ECS reserves, and the sockets that
//! hold a task's ports for as long as it runs, as docker and podman hold theirs. A port
//! another program or task has bound cannot be taken, so two tasks never share one, and
//! an ephemeral port is one nothing else holds.

use std::os::fd::OwnedFd;

use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind as bind_fd, socket};

use super::{Binding, NetError, PortRequest};

/// A bound socket that keeps a host port for its task.
pub type Held = OwnedFd;

/// Binds every requested host port, picking ephemeral ones from `range`; the bindings
/// and the sockets to keep until the task stops.
pub fn reserve(
    requests: &[PortRequest],
    range: (u16, u16),
    seed: u64,
) -> Result<(Vec<Binding>, Vec<Held>), NetError> {
    let mut bindings = Vec::new();
    let mut held = Vec::new();
    for (k, r) in requests.iter().enumerate() {
        let (port, socket) = if r.host_port != 0 {
            let s = bind(r.host_port, &r.protocol).ok_or_else(|| NetError::PortInUse {
                port: r.host_port,
                protocol: r.protocol.clone(),
            })?;
            (r.host_port, s)
        } else {
            ephemeral_candidates(range, seed.wrapping_add(k as u64))
                .find_map(|p| bind(p, &r.protocol).map(|s| (p, s)))
                .ok_or_else(|| NetError::NoFreePort {
                    protocol: r.protocol.clone(),
                    from: range.0,
                    to: range.1,
                })?
        };
        held.push(socket);
        bindings.push(Binding {
            container: r.container.clone(),
            container_port: r.container_port,
            host_port: port,
            protocol: r.protocol.clone(),
        });
    }
    Ok((bindings, held))
}

/// Every port of `range` once, starting at a point `seed` picks, so that tasks started
/// together do not all try the same ports first.
pub fn ephemeral_candidates(range: (u16, u16), seed: u64) -> impl Iterator<Item = u16> {
    let (from, to) = (range.0.min(range.1), range.0.max(range.1));
    let len = u64::from(to - from) + 1;
    let start = seed % len;
    (0..len).map(move |i| from + ((start + i) % len) as u16)
}

/// A socket bound to the port on every address. A TCP one is not listening: a
/// connection the NAT rules did not redirect is refused rather than left hanging.
fn bind(port: u16, protocol: &str) -> Option<Held> {
    let typ = if protocol == "udp" {
        SockType::Datagram
    } else {
        SockType::Stream
    };
    let fd = socket(AddressFamily::Inet, typ, SockFlag::SOCK_CLOEXEC, None).ok()?;
    bind_fd(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::new(0, 0, 0, 0, port),
    )
    .ok()?;
    Some(fd)
}
