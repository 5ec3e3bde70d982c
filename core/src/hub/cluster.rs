//! What the cluster bus thread posts to this worker: the replies of the
//! CLUSTER commands its connections sent (the connection, parked meanwhile,
//! is woken to send it), and slots this node lost, whose shard channels'
//! local subscribers get a `sunsubscribe` push each (Redis's
//! `removeChannelsInSlot`), and messages peers forwarded (cross-node
//! PUBLISH), delivered to the local subscribers as a local publish is.

use bytes::{Bytes, BytesMut};

use super::{ConnKey, Hub};
use crate::cluster::{Mail, SlotSet, key_slot};
use crate::registry::Namespace;
use crate::resp::encode;
use crate::router::SubKind;
use crate::session::ClusterWait;

impl Hub {
    /// Act on what waits in this worker's cluster mailbox.
    pub(super) fn drain_cluster_mail(&mut self) {
        for mail in self.shared.cluster.take(self.worker) {
            match mail {
                Mail::Reply { client, reply } => self.cluster_reply(client, reply),
                Mail::LostSlots(slots) => self.lost_slots(&slots),
                Mail::Deliver(message) => {
                    self.deliver(&message);
                    self.check_doomed();
                }
            }
        }
    }

    fn cluster_reply(&mut self, client: u64, reply: crate::cluster::Reply) {
        let Some(&key) = self.by_id.get(&client) else {
            // Gone while held (a SUBSCRIBE waiting for the peers): let go.
            self.shared.cluster.unhold(client);
            return;
        };
        let conn = &mut self.conns[key];
        if matches!(conn.session.cluster_wait, ClusterWait::Waiting) {
            conn.session.cluster_wait = ClusterWait::Answered(reply);
            if let Some(w) = conn.reader.take() {
                w.wake();
            }
        }
    }

    fn lost_slots(&mut self, slots: &SlotSet) {
        let keys: Vec<ConnKey> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.session.shard_channels.is_empty())
            .map(|(k, _)| k)
            .collect();
        for key in keys {
            let conn = &mut self.conns[key];
            let gone: Vec<Bytes> = conn
                .session
                .shard_channels
                .iter()
                .filter(|name| slots.contains(key_slot(&name[..])))
                .map(|name| Bytes::copy_from_slice(&name[..]))
                .collect();
            if gone.is_empty() {
                continue;
            }
            let kind = SubKind::Channel(Namespace::Shard);
            let mut out = BytesMut::new();
            for name in &gone {
                self.router.unsubscribe(key, &mut conn.session, kind, name);
                let proto = conn.session.proto;
                encode::push(&mut out, 3, proto);
                encode::bulk(&mut out, b"sunsubscribe");
                encode::bulk(&mut out, name);
                encode::integer(&mut out, conn.session.shard_channels.len() as i64);
            }
            conn.session.publish_counts();
            conn.out.extend(&out);
            self.reweigh(key);
            self.sync_pubsub_gauge(key);
        }
    }
}
