//! What a node knows about each cluster node, itself included: identity,
//! address, role, epochs, flags, link, and the slots bound to it.

use std::fmt;

use super::slots::SlotSet;

/// A node id: 40 characters of `[a-z0-9]` (Redis generates lowercase hex and
/// accepts any lowercase letter or digit, `verifyClusterNodeId`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId([u8; NodeId::LEN]);

impl NodeId {
    pub const LEN: usize = 40;

    /// The id spelled by `text`, if it is one.
    pub fn parse(text: &[u8]) -> Option<NodeId> {
        let ok = text.len() == Self::LEN
            && text
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let mut id = [0u8; Self::LEN];
        id.copy_from_slice(text.get(..Self::LEN)?);
        ok.then_some(NodeId(id))
    }

    /// 40 lowercase hex digits drawn from `next` (Redis's `getRandomHexChars`).
    pub fn random(mut next: impl FnMut() -> u64) -> NodeId {
        let mut id = [0u8; Self::LEN];
        for chunk in id.chunks_mut(16) {
            let word = next();
            for (i, b) in chunk.iter_mut().enumerate() {
                *b = b"0123456789abcdef"[(word >> (4 * i)) as usize & 15];
            }
        }
        NodeId(id)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters and digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first 8 characters are enough to tell nodes apart in test output.
        write!(f, "{}", &self.as_str()[..8])
    }
}

/// Where a node takes clients and cluster traffic.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Addr {
    pub ip: String,
    pub port: u16,
    /// The cluster bus port (Redis's default: `port + 10000`).
    pub cport: u16,
    /// `cluster-announce-hostname`, if set.
    pub hostname: Option<String>,
}

/// Node flags as CLUSTER NODES shows them.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(u16);

impl Flags {
    pub const MYSELF: Flags = Flags(1);
    pub const MASTER: Flags = Flags(2);
    pub const SLAVE: Flags = Flags(4);
    /// Suspected down by this node alone (`fail?`).
    pub const PFAIL: Flags = Flags(8);
    /// Down, as the failure detector decided (`fail`).
    pub const FAIL: Flags = Flags(16);
    pub const HANDSHAKE: Flags = Flags(32);
    pub const NOADDR: Flags = Flags(64);
    pub const NOFAILOVER: Flags = Flags(512);

    /// In Redis's order (`redisNodeFlagsTable`), with the names it prints.
    const NAMES: [(Flags, &'static str); 8] = [
        (Flags::MYSELF, "myself"),
        (Flags::MASTER, "master"),
        (Flags::SLAVE, "slave"),
        (Flags::PFAIL, "fail?"),
        (Flags::FAIL, "fail"),
        (Flags::HANDSHAKE, "handshake"),
        (Flags::NOADDR, "noaddr"),
        (Flags::NOFAILOVER, "nofailover"),
    ];

    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    pub fn remove(&mut self, other: Flags) {
        self.0 &= !other.0;
    }

    pub fn set(&mut self, other: Flags, on: bool) {
        if on {
            self.insert(other);
        } else {
            self.remove(other);
        }
    }

    /// `myself,master`, or `noflags` when none is set.
    pub fn render(self) -> String {
        let names: Vec<&str> = Self::NAMES
            .iter()
            .filter(|(f, _)| self.contains(*f))
            .map(|(_, name)| *name)
            .collect();
        if names.is_empty() {
            "noflags".to_string()
        } else {
            names.join(",")
        }
    }

    /// The flags of a nodes.conf line; None for a name Redis does not know.
    pub fn parse(text: &str) -> Option<Flags> {
        let mut flags = Flags::default();
        for name in text.split(',') {
            if name.eq_ignore_ascii_case("noflags") {
                continue;
            }
            let (flag, _) = Self::NAMES
                .iter()
                .find(|(_, n)| n.eq_ignore_ascii_case(name))?;
            flags.insert(*flag);
        }
        Some(flags)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
}

/// Whether this node can reach that one (CLUSTER NODES' `connected` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Link {
    Connected,
    #[default]
    Disconnected,
}

/// The order of a node's claims: a claim replaces only an older one.
/// `incarnation` is the node's start time (it grows from one start to the
/// next), and `seq` counts the claims of one incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Version {
    pub incarnation: u64,
    pub seq: u64,
}

/// One cluster node as this node sees it.
#[derive(Clone, Debug)]
pub struct Node {
    pub id: NodeId,
    pub addr: Addr,
    /// Shared by a master and its replicas (CLUSTER SHARDS, MYSHARDID).
    pub shard_id: NodeId,
    pub flags: Flags,
    /// The master of a replica.
    pub master: Option<NodeId>,
    pub config_epoch: u64,
    /// The current epoch the node last published.
    pub current_epoch: u64,
    pub link: Link,
    /// Since when the link has been connected (unix ms; CLUSTER LINKS's
    /// `create-time`).
    pub link_since: u64,
    /// When this node last sent it a ping still unanswered, and last got its
    /// pong (unix ms; 0 for never), as the transport reports them.
    pub ping_sent: u64,
    pub pong_received: u64,
    /// The slots bound to it in this node's slot table.
    pub slots: SlotSet,
    /// Its latest claim applied here.
    pub version: Option<Version>,
}

impl Node {
    pub(crate) fn new(id: NodeId, shard_id: NodeId, flags: Flags) -> Node {
        Node {
            id,
            addr: Addr::default(),
            shard_id,
            flags,
            master: None,
            config_epoch: 0,
            current_epoch: 0,
            link: Link::Disconnected,
            link_since: 0,
            ping_sent: 0,
            pong_received: 0,
            slots: SlotSet::new(),
            version: None,
        }
    }

    pub fn is_master(&self) -> bool {
        self.flags.contains(Flags::MASTER)
    }

    pub fn is_replica(&self) -> bool {
        self.flags.contains(Flags::SLAVE)
    }

    pub fn is_failed(&self) -> bool {
        self.flags.contains(Flags::FAIL)
    }

    pub fn is_myself(&self) -> bool {
        self.flags.contains(Flags::MYSELF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_40_lowercase_letters_or_digits() {
        let hex = b"432db750da54b3d5ade2d900c753f459f58e016c";
        assert_eq!(
            NodeId::parse(hex).map(|id| id.to_string()).as_deref(),
            Some("432db750da54b3d5ade2d900c753f459f58e016c")
        );
        assert!(NodeId::parse(b"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz").is_some());
        assert!(NodeId::parse(b"432DB750DA54B3D5ADE2D900C753F459F58E016C").is_none());
        assert!(NodeId::parse(&hex[..39]).is_none());
        assert!(NodeId::parse(b"").is_none());
    }

    #[test]
    fn random_ids_are_hex() {
        let mut n = 0u64;
        let id = NodeId::random(|| {
            n += 0x0123_4567_89ab_cdef;
            n
        });
        assert!(id.as_bytes().iter().all(u8::is_ascii_hexdigit));
        assert!(NodeId::parse(id.as_bytes()).is_some());
    }

    #[test]
    fn flags_render_in_redis_order() {
        assert_eq!((Flags::MASTER | Flags::MYSELF).render(), "myself,master");
        assert_eq!(
            (Flags::SLAVE | Flags::FAIL | Flags::PFAIL).render(),
            "slave,fail?,fail"
        );
        assert_eq!(Flags::default().render(), "noflags");
        assert_eq!(
            Flags::parse("myself,master"),
            Some(Flags::MYSELF | Flags::MASTER)
        );
        assert_eq!(Flags::parse("noflags"), Some(Flags::default()));
        assert_eq!(Flags::parse("master,bogus"), None);
    }
}
