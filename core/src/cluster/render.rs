//! CLUSTER NODES, SLOTS, SHARDS and INFO, byte for byte as Redis 7.2 renders
//! them (`clusterGenNodeDescription`, `clusterReplyMultiBulkSlots`,
//! `clusterReplyShards`, `genClusterInfoString`). Redis lists nodes and
//! shards in hash-table order, which is arbitrary; ringcast lists them by id.
//!
//! Two choices of ringcast's: a replica is listed in CLUSTER SLOTS and
//! reported `online` as soon as it is up (a Redis replica waits for its
//! first sync, and ringcast has nothing to sync), and the bus message
//! counters of CLUSTER INFO are zero (there is no Redis bus).

use std::fmt::Write as _;

use super::Cluster;
use super::claim::render_addr;
use super::node::{Flags, Link, Node};
use super::reply::Reply;
use super::slots::{SLOTS, Slot, render_ranges};

impl Cluster {
    /// The CLUSTER NODES text: one line per node, each ending in `\n`.
    pub fn nodes_text(&self) -> String {
        self.nodes()
            .into_iter()
            .map(|n| self.node_line(n, false) + "\n")
            .collect()
    }

    /// One CLUSTER NODES line, without its newline; `persist` adds the
    /// fields Redis writes only to nodes.conf.
    pub(super) fn node_line(&self, node: &Node, persist: bool) -> String {
        let mut line = format!("{} {}", node.id, render_addr(&node.addr));
        if persist {
            if node.addr.hostname.is_none() {
                line.push(',');
            }
            // Redis 7.2 writes its aux fields, the TLS port first.
            let _ = write!(line, ",tls-port=0,shard-id={}", node.shard_id);
        }
        let master = node.master.map_or("-".to_string(), |m| m.to_string());
        let epoch = match node.master.and_then(|m| self.node(&m)) {
            Some(master) if node.is_replica() => master.config_epoch,
            _ => node.config_epoch,
        };
        let link = if node.link == Link::Connected || node.is_myself() {
            "connected"
        } else {
            "disconnected"
        };
        // nodes.conf gets no times: they mean nothing after a restart.
        let (ping, pong) = match persist {
            true => (0, 0),
            false => (node.ping_sent, node.pong_received),
        };
        let _ = write!(
            line,
            " {} {master} {ping} {pong} {epoch} {link}",
            node.flags.render()
        );
        let ranges = node.slots.ranges();
        if !ranges.is_empty() {
            line.push(' ');
            line.push_str(&render_ranges(&ranges));
        }
        if node.is_myself() {
            self.push_open_slots(&mut line);
        }
        line
    }

    /// `[slot->-id]` for a slot being migrated, `[slot-<-id]` for one being
    /// imported, in slot order.
    fn push_open_slots(&self, line: &mut String) {
        let mut open: Vec<(Slot, String)> = Vec::new();
        for (slot, to) in &self.migrating {
            open.push((*slot, format!(" [{slot}->-{to}]")));
        }
        for (slot, from) in &self.importing {
            if !self.migrating.contains_key(slot) {
                open.push((*slot, format!(" [{slot}-<-{from}]")));
            }
        }
        open.sort_by_key(|(slot, _)| *slot);
        for (_, entry) in open {
            line.push_str(&entry);
        }
    }

    /// CLUSTER LINKS (`addReplyClusterLinksDescription`): for each peer
    /// whose link is connected, the link this node opened to it (`to`) and
    /// the one it opened here (`from`). ringcast's gossip queues nothing
    /// per peer, so both buffers are 0 and the links wait only to read.
    pub fn links_reply(&self) -> Reply {
        let mut links = Vec::new();
        for node in self.peers.values().filter(|n| n.link == Link::Connected) {
            for direction in ["to", "from"] {
                links.push(Reply::Map(vec![
                    (Reply::bulk("direction"), Reply::bulk(direction)),
                    (Reply::bulk("node"), Reply::bulk(node.id.as_str())),
                    (
                        Reply::bulk("create-time"),
                        Reply::Int(node.link_since as i64),
                    ),
                    (Reply::bulk("events"), Reply::bulk("r")),
                    (Reply::bulk("send-buffer-allocated"), Reply::Int(0)),
                    (Reply::bulk("send-buffer-used"), Reply::Int(0)),
                ]));
            }
        }
        Reply::Array(links)
    }

    /// CLUSTER REPLICAS: the lines of a master's replicas.
    pub(super) fn replica_lines(&self, master: &Node) -> Reply {
        let lines = self
            .replicas_of(master)
            .map(|r| Reply::bulk(self.node_line(r, false)))
            .collect();
        Reply::Array(lines)
    }

    pub(super) fn replicas_of<'a>(&'a self, master: &'a Node) -> impl Iterator<Item = &'a Node> {
        self.nodes()
            .into_iter()
            .filter(move |n| n.is_replica() && n.master == Some(master.id))
    }

    /// CLUSTER SLOTS: each run of slots with one owner, its master then its
    /// replicas.
    pub fn slots_reply(&self) -> Reply {
        let mut entries = Vec::new();
        let mut slot = 0usize;
        while slot < SLOTS {
            let Some(owner) = self.owner(slot as Slot) else {
                slot += 1;
                continue;
            };
            let start = slot;
            while slot < SLOTS && self.owners[slot] == Some(owner.id) {
                slot += 1;
            }
            let mut entry = vec![Reply::Int(start as i64), Reply::Int(slot as i64 - 1)];
            entry.push(self.slots_node_entry(owner));
            for replica in self.replicas_of(owner).filter(|r| !r.is_failed()) {
                entry.push(self.slots_node_entry(replica));
            }
            entries.push(Reply::Array(entry));
        }
        Reply::Array(entries)
    }

    /// `[endpoint, port, id, {ip?, hostname?}]` (`addNodeToNodeReply`).
    fn slots_node_entry(&self, node: &Node) -> Reply {
        use super::Endpoint;
        let preferred = self.settings.preferred_endpoint;
        let endpoint = match preferred {
            Endpoint::Unknown => Reply::Null,
            _ => Reply::bulk(self.endpoint(node)),
        };
        let mut extra = Vec::new();
        if preferred != Endpoint::Ip {
            extra.push((Reply::bulk("ip"), Reply::bulk(node.addr.ip.clone())));
        }
        if let Some(host) = &node.addr.hostname
            && preferred != Endpoint::Hostname
        {
            extra.push((Reply::bulk("hostname"), Reply::bulk(host.clone())));
        }
        Reply::Array(vec![
            endpoint,
            Reply::Int(i64::from(node.addr.port)),
            Reply::bulk(node.id.as_str()),
            Reply::Map(extra),
        ])
    }

    /// CLUSTER SHARDS: nodes grouped by shard id, each group with its
    /// master's slot ranges.
    pub fn shards_reply(&self) -> Reply {
        let mut shards: Vec<Vec<&Node>> = Vec::new();
        let mut all = self.nodes();
        all.sort_by_key(|n| (n.shard_id, n.is_replica(), n.id));
        for node in all {
            match shards.last_mut() {
                Some(shard) if shard[0].shard_id == node.shard_id => shard.push(node),
                _ => shards.push(vec![node]),
            }
        }
        Reply::Array(shards.iter().map(|s| self.shard_entry(s)).collect())
    }

    fn shard_entry(&self, nodes: &[&Node]) -> Reply {
        let master = match nodes[0].master.and_then(|m| self.node(&m)) {
            Some(master) if nodes[0].is_replica() => master,
            _ => nodes[0],
        };
        let ranges = master
            .slots
            .ranges()
            .into_iter()
            .flat_map(|(start, end)| [Reply::Int(start.into()), Reply::Int(end.into())])
            .collect();
        let details = nodes.iter().map(|n| self.shard_node(n)).collect();
        Reply::Map(vec![
            (Reply::bulk("slots"), Reply::Array(ranges)),
            (Reply::bulk("nodes"), Reply::Array(details)),
        ])
    }

    /// One node of CLUSTER SHARDS (`addNodeDetailsToShardReply`).
    fn shard_node(&self, node: &Node) -> Reply {
        let mut map = vec![(Reply::bulk("id"), Reply::bulk(node.id.as_str()))];
        if node.addr.port != 0 {
            map.push((Reply::bulk("port"), Reply::Int(node.addr.port.into())));
        }
        map.push((Reply::bulk("ip"), Reply::bulk(node.addr.ip.clone())));
        map.push((Reply::bulk("endpoint"), Reply::bulk(self.endpoint(node))));
        if let Some(host) = &node.addr.hostname {
            map.push((Reply::bulk("hostname"), Reply::bulk(host.clone())));
        }
        let role = if node.is_replica() {
            "replica"
        } else {
            "master"
        };
        let health = if node.is_failed() { "fail" } else { "online" };
        map.push((Reply::bulk("role"), Reply::bulk(role)));
        map.push((Reply::bulk("replication-offset"), Reply::Int(0)));
        map.push((Reply::bulk("health"), Reply::bulk(health)));
        Reply::Map(map)
    }

    /// The CLUSTER INFO text.
    pub fn info_text(&self) -> String {
        let (mut assigned, mut ok, mut pfail, mut fail) = (0, 0, 0, 0);
        for owner in (0..SLOTS as Slot).filter_map(|s| self.owner(s)) {
            assigned += 1;
            if owner.is_failed() {
                fail += 1;
            } else if owner.flags.contains(Flags::PFAIL) {
                pfail += 1;
            } else {
                ok += 1;
            }
        }
        let nodes = self.nodes();
        let size = nodes
            .iter()
            .filter(|n| n.is_master() && !n.slots.is_empty())
            .count();
        let my_epoch = match self.my_master() {
            Some(master) if self.me.is_replica() => master.config_epoch,
            _ => self.me.config_epoch,
        };
        let state = if self.ok { "ok" } else { "fail" };
        format!(
            "cluster_state:{state}\r\n\
             cluster_slots_assigned:{assigned}\r\n\
             cluster_slots_ok:{ok}\r\n\
             cluster_slots_pfail:{pfail}\r\n\
             cluster_slots_fail:{fail}\r\n\
             cluster_known_nodes:{}\r\n\
             cluster_size:{size}\r\n\
             cluster_current_epoch:{}\r\n\
             cluster_my_epoch:{my_epoch}\r\n\
             cluster_stats_messages_sent:0\r\n\
             cluster_stats_messages_received:0\r\n\
             total_cluster_links_buffer_limit_exceeded:0\r\n",
            nodes.len(),
            self.current_epoch,
        )
    }
}

/// What `redis-cli --cluster` compares across nodes to decide they agree
/// (`clusterManagerGetConfigSignature`): for each line of a CLUSTER NODES
/// text that lists slots, `id:` and its slot entries sorted as strings and
/// joined by `,`; the lines sorted and joined by `|`. None when no line
/// lists slots.
pub fn config_signature(nodes_text: &str) -> Option<String> {
    let mut configs: Vec<String> = nodes_text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let mut slots: Vec<&str> = fields
                .get(8..)?
                .iter()
                .copied()
                .filter(|s| !s.starts_with('[') && !s.is_empty())
                .collect();
            if slots.is_empty() {
                return None;
            }
            slots.sort_unstable();
            Some(format!("{}:{}", fields[0], slots.join(",")))
        })
        .collect();
    configs.sort_unstable();
    (!configs.is_empty()).then(|| configs.join("|"))
}
