//! What the workers share with the server's cluster bus thread, which owns
//! the [`Cluster`] value: the latest snapshot of it (routing reads it on
//! every SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH and EXEC), the way CLUSTER
//! requests reach the bus thread, and each worker's mailbox for what comes
//! back (replies, slots lost).
//!
//! No worker ever waits here: a request is handed over without blocking and
//! the connection that sent it parks until its reply is in the mailbox; the
//! bus thread takes a mailbox's lock only to push one item.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwapOption;
use bytes::Bytes;

use super::{Cluster, Reply, SlotSet};
use crate::WorkerId;

/// A CLUSTER command on its way to the bus thread.
#[derive(Debug)]
pub struct BusRequest {
    pub worker: WorkerId,
    /// The client that waits for the reply (ids are never reused).
    pub client: u64,
    /// `CLUSTER <subcommand> ...`
    pub args: Vec<Bytes>,
}

/// What the bus thread posts to a worker.
#[derive(Debug)]
pub enum Mail {
    /// The reply to a [`BusRequest`] of this client.
    Reply { client: u64, reply: Reply },
    /// These slots left this node: `sunsubscribe` the local subscribers of
    /// shard channels in them.
    LostSlots(Arc<SlotSet>),
}

type Send = Box<dyn Fn(BusRequest) -> bool + std::marker::Send + Sync>;

#[derive(Default)]
struct Mailbox {
    full: AtomicBool,
    items: Mutex<Vec<Mail>>,
}

/// The workers' side of the cluster bus. Without `cluster-enabled` it stays
/// empty and [`Bus::enabled`] is false.
pub struct Bus {
    enabled: bool,
    view: ArcSwapOption<Cluster>,
    send: OnceLock<Send>,
    mail: Box<[Mailbox]>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl Bus {
    pub fn new(enabled: bool, workers: usize) -> Bus {
        Bus {
            enabled,
            view: ArcSwapOption::empty(),
            send: OnceLock::new(),
            mail: (0..workers).map(|_| Mailbox::default()).collect(),
        }
    }

    /// `cluster-enabled yes`.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The latest snapshot of the cluster (None until the bus thread has
    /// published one, and always without cluster mode).
    pub fn view(&self) -> Option<Arc<Cluster>> {
        self.view.load_full()
    }

    /// A new snapshot, published by the bus thread before it answers the
    /// request that changed it (a client sees its own change at once).
    pub fn publish(&self, cluster: Arc<Cluster>) {
        self.view.store(Some(cluster));
    }

    /// Installs how requests reach the bus thread (the server does, once).
    pub fn install(&self, send: impl Fn(BusRequest) -> bool + std::marker::Send + Sync + 'static) {
        let _ = self.send.set(Box::new(send));
    }

    /// Hands a request to the bus thread without waiting; false if there is
    /// no bus thread to take it.
    pub fn request(&self, request: BusRequest) -> bool {
        self.send.get().is_some_and(|send| send(request))
    }

    /// Posts to a worker's mailbox; the caller then rings its doorbell.
    pub fn post(&self, worker: WorkerId, mail: Mail) {
        if let Some(mailbox) = self.mail.get(worker) {
            crate::lock(&mailbox.items).push(mail);
            mailbox.full.store(true, Ordering::Release);
        }
    }

    /// Takes what waits in a worker's mailbox (one atomic load when empty).
    pub fn take(&self, worker: WorkerId) -> Vec<Mail> {
        match self.mail.get(worker) {
            Some(mailbox) if mailbox.full.swap(false, Ordering::Acquire) => {
                std::mem::take(&mut *crate::lock(&mailbox.items))
            }
            _ => Vec::new(),
        }
    }
}
