//! A fair gate in front of the reconciles: at most `--concurrency` run at once, and when more wait, the next
//! free slot goes to the namespace after the one served last (round-robin), so a namespace with a backlog of
//! hundreds of rooms does not delay another namespace's new room by more than a slot. The Controller hands up to
//! 1 024 queued objects' reconciles over at once; a reconcile waits here before doing any work, holding only its
//! object's reference, and the ZIM rate limiter is fair between namespaces in the same way (see
//! [`crate::zim::limiter`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::lock;
use crate::zim::limiter::next_in_turn;

#[derive(Default)]
struct State {
    free: usize,
    waiting: BTreeMap<Arc<str>, VecDeque<oneshot::Sender<()>>>,
    last: Option<Arc<str>>,
}

/// See the module docs.
pub(crate) struct FairGate {
    state: Arc<Mutex<State>>,
}

/// A slot; freeing it hands it to the next waiter.
pub(crate) struct Slot {
    state: Arc<Mutex<State>>,
}

impl FairGate {
    pub(crate) fn new(slots: usize) -> Self {
        Self { state: Arc::new(Mutex::new(State { free: slots.max(1), ..Default::default() })) }
    }

    /// Waits for a slot for a reconcile of `tenant`'s object.
    pub(crate) async fn enter(&self, tenant: &str) -> Slot {
        let rx = {
            let mut s = lock(&self.state);
            if s.free > 0 && s.waiting.is_empty() {
                s.free -= 1;
                return Slot { state: self.state.clone() };
            }
            let (tx, rx) = oneshot::channel();
            s.waiting.entry(tenant.into()).or_default().push_back(tx);
            rx
        };
        // The sender is only dropped with the gate's state, which this future keeps alive.
        let _ = rx.await;
        Slot { state: self.state.clone() }
    }

    /// Reconciles waiting for a slot.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        lock(&self.state).waiting.values().map(VecDeque::len).sum()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = lock(&self.state);
        loop {
            let Some(tenant) = next_in_turn(&s.waiting, s.last.as_ref()) else {
                s.free += 1;
                return;
            };
            let queue = s.waiting.get_mut(&tenant).expect("tenant present");
            let tx = queue.pop_front().expect("queues are never left empty");
            if queue.is_empty() {
                s.waiting.remove(&tenant);
            }
            s.last = Some(tenant);
            // A waiter that went away (its reconcile was dropped) passes the slot on.
            if tx.send(()).is_ok() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With one slot held and a backlog of one namespace queued before another's object, the other namespace
    /// gets the second slot, not the last.
    #[tokio::test]
    async fn a_backlog_does_not_hold_up_another_namespace() {
        let gate = Arc::new(FairGate::new(1));
        let first = gate.enter("a").await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (i, tenant) in ["a", "a", "a", "a", "b", "a"].into_iter().enumerate() {
            let (g, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = g.enter(tenant).await;
                lock(&order).push(i);
            }));
            while gate.waiting() < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        let order = lock(&order).clone();
        let b = order.iter().position(|&i| i == 4).unwrap();
        assert!(b <= 1, "b was served after {b} of a's: {order:?}");
        assert_eq!(order.len(), 6);
    }

    /// At most `slots` at once; a dropped waiter passes its slot on.
    #[tokio::test]
    async fn slots_bound_concurrency_and_survive_cancelled_waiters() {
        let gate = Arc::new(FairGate::new(2));
        let s1 = gate.enter("a").await;
        let _s2 = gate.enter("b").await;
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.enter("c").await })
        };
        while gate.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        let _ = waiter.await;
        let third = {
            let gate = gate.clone();
            tokio::spawn(async move {
                let _s = gate.enter("d").await;
            })
        };
        while gate.waiting() < 2 && !third.is_finished() {
            tokio::task::yield_now().await;
        }
        assert!(!third.is_finished(), "a third reconcile ran with two slots taken");
        drop(s1);
        tokio::time::timeout(std::time::Duration::from_secs(5), third).await.unwrap().unwrap();
    }
}
