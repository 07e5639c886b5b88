//! The links, addresses and routes of the task network, made over a blocking route
//! netlink socket (the rust-netlink crates encode the messages): the bridge, a task's veth
//! pair, and its address and default route inside the task's network namespace.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd as _;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// A route netlink socket of one network namespace: the one it was opened in.
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

/// A link as the kernel reports it.
pub struct Link {
    pub index: u32,
    pub mac: Vec<u8>,
}

impl Netlink {
    /// A socket in the caller's network namespace.
    pub fn open() -> io::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink { socket, seq: 0 })
    }

    /// A socket in the network namespace `netns`: opened there, it stays bound to it
    /// after the caller goes back to its own. Only for a single-threaded caller (the
    /// supervisor), as setns moves the calling thread only.
    pub fn open_in(netns: &File) -> io::Result<Netlink> {
        use nix::sched::{CloneFlags, setns};
        let own = File::open("/proc/thread-self/ns/net")?;
        setns(netns, CloneFlags::CLONE_NEWNET)?;
        let socket = Netlink::open();
        setns(&own, CloneFlags::CLONE_NEWNET).map_err(|e| {
            io::Error::other(format!("return to the supervisor's network namespace: {e}"))
        })?;
        socket
    }

    /// The link named `name`, which must exist (ENODEV otherwise).
    pub fn existing_link(&mut self, name: &str) -> io::Result<Link> {
        self.link(name)?
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
    }

    /// The link named `name`; `None` if there is none.
    pub fn link(&mut self, name: &str) -> io::Result<Option<Link>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let replies = match self.request(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(replies.into_iter().find_map(|r| match r {
            RouteNetlinkMessage::NewLink(l) => Some(Link {
                index: l.header.index,
                mac: l
                    .attributes
                    .into_iter()
                    .find_map(|a| match a {
                        LinkAttribute::Address(mac) => Some(mac),
                        _ => None,
                    })
                    .unwrap_or_default(),
            }),
            _ => None,
        }))
    }

    /// Creates a bridge named `name`, down; one that exists is left as it is.
    pub fn add_bridge(&mut self, name: &str) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Bridge),
            LinkInfo::Data(InfoData::Bridge(Vec::new())),
        ]));
        self.create(RouteNetlinkMessage::NewLink(msg))
    }

    /// Creates a veth pair: `host` on this socket's namespace, up and a port of the bridge
    /// `bridge`; `peer` in the namespace `netns`, down (the kernel refuses to bring up a
    /// peer before its pair is complete).
    pub fn add_veth(
        &mut self,
        host: &str,
        bridge: u32,
        peer: &str,
        netns: &File,
    ) -> io::Result<()> {
        let mut inside = LinkMessage::default();
        inside
            .attributes
            .push(LinkAttribute::IfName(peer.to_string()));
        inside
            .attributes
            .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        let mut msg = LinkMessage::default();
        up(&mut msg);
        msg.attributes.push(LinkAttribute::IfName(host.to_string()));
        msg.attributes.push(LinkAttribute::Controller(bridge));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(inside))),
        ]));
        // A link of that name already there is not this task's: an error, not success.
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
    }

    /// Lets the bridge port `index` send frames back where they came from, so that a task
    /// reaches itself through a port mapping.
    pub fn set_hairpin(&mut self, index: u32) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
                true,
            )])),
        ]));
        self.request(RouteNetlinkMessage::NewLink(msg), 0).map(drop)
    }

    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        up(&mut msg);
        self.request(RouteNetlinkMessage::SetLink(msg), 0).map(drop)
    }

    /// Deletes the link named `name`; `false` if there was none.
    pub fn delete_link(&mut self, name: &str) -> io::Result<bool> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::DelLink(msg), 0) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the link `index` the address `ip/prefix_len`; one it has already is fine.
    pub fn add_address(
        &mut self,
        index: u32,
        ip: Ipv4Addr,
        prefix_len: u8,
        broadcast: Ipv4Addr,
    ) -> io::Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix_len;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V4(ip)));
        msg.attributes.push(AddressAttribute::Broadcast(broadcast));
        self.create(RouteNetlinkMessage::NewAddress(msg))
    }

    /// A default route through `gateway` on the link `index`.
    pub fn add_default_route(&mut self, index: u32, gateway: Ipv4Addr) -> io::Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        msg.attributes.push(RouteAttribute::Oif(index));
        self.create(RouteNetlinkMessage::NewRoute(msg))
    }

    /// A request that creates something; that it exists already is fine.
    fn create(&mut self, msg: RouteNetlinkMessage) -> io::Result<()> {
        match self.request(msg, NLM_F_CREATE | NLM_F_EXCL) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            r => r.map(drop),
        }
    }

    /// Sends `msg` and reads the replies up to the kernel's acknowledgement.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        let mut replies = Vec::new();
        loop {
            let mut buf = Vec::with_capacity(16 * 1024);
            self.socket.recv(&mut buf, 0)?;
            let mut rest = &buf[..];
            while !rest.is_empty() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = (reply.header.length as usize).clamp(1, rest.len());
                rest = &rest[len..];
                if reply.header.sequence_number != self.seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                    NetlinkPayload::Error(_) | NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::InnerMessage(m) => replies.push(m),
                    _ => {}
                }
            }
        }
    }
}

fn up(msg: &mut LinkMessage) {
    msg.header.flags |= LinkFlags::Up;
    msg.header.change_mask |= LinkFlags::Up;
}
