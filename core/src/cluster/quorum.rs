//! Failure reports: a peer is failed (`fail`, and rules 5 and 6 may act on
//! it) only when a majority of the masters that hold slots judge it
//! unreachable, as Redis's `clusterNodeAddFailureReport` and
//! `markNodeAsFailingIfNeeded` decide.
//!
//! Each node judges its peers alone from its node timeout
//! ([`Cluster::set_liveness`]: `fail?`, Redis's PFAIL) and publishes its
//! judgements as [`Reports`], beside its claim. A node marks a peer it
//! judges unreachable `fail` when the fresh reports (received within twice
//! the node timeout) of slot-holding masters, its own included if it is
//! one, are a majority of the slot-holding masters; or when a peer reports
//! the `fail` verdict (Redis broadcasts FAIL). So a node cut off from the
//! majority never fails anyone, and never takes their slots.
//!
//! A report travels as one line of text: `pfail:<id>` and `fail:<id>`
//! words, in any order.

use std::collections::BTreeMap;

use super::node::{Flags, NodeId};
use super::{Cluster, Effect};

/// The peers a node judges unreachable, and those it holds failed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reports {
    /// Judged unreachable by the reporter alone (`fail?`).
    pub pfail: Vec<NodeId>,
    /// Failed by a majority's reports (`fail`).
    pub fail: Vec<NodeId>,
}

impl Reports {
    pub fn to_text(&self) -> String {
        let pfail = self.pfail.iter().map(|id| format!("pfail:{id}"));
        let fail = self.fail.iter().map(|id| format!("fail:{id}"));
        pfail.chain(fail).collect::<Vec<_>>().join(" ")
    }

    /// Words that do not parse are skipped: a report is advice.
    pub fn parse(text: &str) -> Reports {
        let mut reports = Reports::default();
        for word in text.split_ascii_whitespace() {
            let Some((kind, id)) = word.split_once(':') else {
                continue;
            };
            let Some(id) = NodeId::parse(id.as_bytes()) else {
                continue;
            };
            match kind {
                "pfail" => reports.pfail.push(id),
                "fail" => reports.fail.push(id),
                _ => {}
            }
        }
        reports
    }
}

/// One reporter's latest word on a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Report {
    /// When it was last received (unix ms).
    at: u64,
    /// The reporter holds the peer failed, not only unreachable.
    fail: bool,
}

/// Reports by the node they are about, then by reporter.
pub(super) type FailureReports = BTreeMap<NodeId, BTreeMap<NodeId, Report>>;

impl Cluster {
    /// What this node's gossip carries about its peers.
    pub fn reports(&self) -> Reports {
        let mut reports = Reports::default();
        for node in self.peers.values() {
            if node.flags.contains(Flags::FAIL) {
                reports.fail.push(node.id);
            } else if node.flags.contains(Flags::PFAIL) {
                reports.pfail.push(node.id);
            }
        }
        reports
    }

    /// A peer's latest [`Reports`], as the gossip layer delivers them
    /// (again from time to time: a report is fresh for twice the node
    /// timeout after it was last received). Reports from unknown nodes and
    /// about this node are ignored.
    pub fn apply_reports(&mut self, reporter: &NodeId, reports: &Reports, now: u64) -> Vec<Effect> {
        self.step(now, |c| {
            if *reporter == c.me.id || !c.peers.contains_key(reporter) {
                return;
            }
            for about in c.failure_reports.values_mut() {
                about.remove(reporter);
            }
            let words = reports.pfail.iter().map(|id| (id, false));
            for (id, fail) in words.chain(reports.fail.iter().map(|id| (id, true))) {
                if *id == *reporter || !c.peers.contains_key(id) {
                    continue;
                }
                let report = Report { at: now, fail };
                c.failure_reports
                    .entry(*id)
                    .or_default()
                    .insert(*reporter, report);
            }
            c.failure_reports.retain(|_, about| !about.is_empty());
        })
        .1
    }

    /// How many slot-holding masters judge `id` unreachable, and how many
    /// make a majority.
    pub fn failure_quorum(&self, id: &NodeId) -> (usize, usize) {
        let holds_slots = |n: &NodeId| {
            self.node(n)
                .is_some_and(|n| n.is_master() && !n.slots.is_empty())
        };
        let size = self.nodes().iter().filter(|n| holds_slots(&n.id)).count();
        let mine = usize::from(
            holds_slots(&self.me.id)
                && self
                    .peers
                    .get(id)
                    .is_some_and(|n| n.flags.intersects(Flags::PFAIL | Flags::FAIL)),
        );
        let fresh = self
            .fresh_reports(id)
            .filter(|(r, _)| holds_slots(r))
            .count();
        (mine + fresh, size / 2 + 1)
    }

    fn fresh_reports(&self, id: &NodeId) -> impl Iterator<Item = (NodeId, Report)> + '_ {
        let max_age = self.settings.node_timeout_ms.saturating_mul(2);
        self.failure_reports
            .get(id)
            .into_iter()
            .flat_map(|about| about.iter())
            .filter(move |(_, r)| self.now.saturating_sub(r.at) <= max_age)
            .map(|(reporter, r)| (*reporter, *r))
    }

    /// Drop stale reports and those of forgotten nodes; mark `fail` the
    /// peers this node judges unreachable that a majority reports, or that
    /// a peer holds failed (Redis's `markNodeAsFailingIfNeeded` and its
    /// FAIL message).
    pub(super) fn mark_failing(&mut self) {
        let max_age = self.settings.node_timeout_ms.saturating_mul(2);
        let (now, peers) = (self.now, &self.peers);
        self.failure_reports.retain(|id, about| {
            about.retain(|r, report| {
                peers.contains_key(r) && now.saturating_sub(report.at) <= max_age
            });
            peers.contains_key(id) && !about.is_empty()
        });
        let suspects: Vec<NodeId> = self
            .peers
            .values()
            .filter(|n| n.flags.contains(Flags::PFAIL))
            .map(|n| n.id)
            .collect();
        for id in suspects {
            let (reports, quorum) = self.failure_quorum(&id);
            let told = self.fresh_reports(&id).any(|(_, r)| r.fail);
            if (reports >= quorum || told)
                && let Some(node) = self.peers.get_mut(&id)
            {
                node.flags.remove(Flags::PFAIL);
                node.flags.insert(Flags::FAIL);
                self.save = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_through_text() {
        let a = NodeId::parse(b"432db750da54b3d5ade2d900c753f459f58e016c").unwrap();
        let b = NodeId::parse(b"59842a06895be50589d2680b301a8082e78dec90").unwrap();
        let reports = Reports {
            pfail: vec![a],
            fail: vec![b],
        };
        let text = reports.to_text();
        assert_eq!(
            text,
            "pfail:432db750da54b3d5ade2d900c753f459f58e016c \
             fail:59842a06895be50589d2680b301a8082e78dec90"
        );
        assert_eq!(Reports::parse(&text), reports);
        assert_eq!(Reports::parse(""), Reports::default());
        assert_eq!(
            Reports::parse("bogus fail:xyz pfail:432db750da54b3d5ade2d900c753f459f58e016c"),
            Reports {
                pfail: vec![a],
                fail: vec![],
            }
        );
    }
}
