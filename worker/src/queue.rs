//! The pool's run queue: the shards a worker holds and has not started, highest job priority
//! first and, within a priority, in the order they arrived. The master fills a worker's
//! window per priority (see the master's `core/dispatch.rs`), so a higher-priority job's
//! shards arrive behind lower-priority ones already queued; this queue lets them overtake,
//! and they start on the next free thread instead of after everything queued before them.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, MutexGuard};

/// A queue shared by the pool's threads.
pub(crate) struct RunQueue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

struct State<T> {
    heap: BinaryHeap<Entry<T>>,
    /// The arrival number of the next item, to keep arrival order within a priority.
    next_seq: u64,
    /// No more items will come: threads leave once the queue is empty.
    closed: bool,
    /// Threads waiting for an item: a push wakes one only if there is one, so a busy pool's
    /// queue costs no futex call per shard.
    waiting: usize,
}

struct Entry<T> {
    priority: i32,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    /// The greatest is served first: the highest priority, then the earliest arrival.
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority.cmp(&other.priority).then_with(|| other.seq.cmp(&self.seq))
    }
}

impl<T> Default for RunQueue<T> {
    fn default() -> Self {
        let state = State { heap: BinaryHeap::new(), next_seq: 0, closed: false, waiting: 0 };
        RunQueue { state: Mutex::new(state), ready: Condvar::new() }
    }
}

impl<T> RunQueue<T> {
    /// Queues an item and wakes one waiting thread.
    pub fn push(&self, priority: i32, item: T) {
        let mut state = self.lock();
        let seq = state.next_seq;
        state.next_seq += 1;
        state.heap.push(Entry { priority, seq, item });
        let wake = state.waiting > 0;
        drop(state);
        if wake {
            self.ready.notify_one();
        }
    }

    /// The next item; waits for one. `None` once the queue is closed and empty.
    pub fn pop(&self) -> Option<T> {
        let mut state = self.lock();
        loop {
            if let Some(entry) = state.heap.pop() {
                return Some(entry.item);
            }
            if state.closed {
                return None;
            }
            // Counted under the lock a push checks, so no wake-up is lost.
            state.waiting += 1;
            state = self.ready.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
            state.waiting -= 1;
        }
    }

    /// How many items wait.
    pub fn len(&self) -> usize {
        self.lock().heap.len()
    }

    /// No more items: threads finish what is queued, then `pop` returns `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// The state; a thread that panicked holding the lock left it consistent (no user code
    /// runs under it), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_priorities_overtake_and_equal_ones_keep_their_order() {
        let queue = RunQueue::default();
        queue.push(0, "low a");
        queue.push(0, "low b");
        queue.push(10, "high a");
        queue.push(-5, "lowest");
        queue.push(10, "high b");
        queue.close();
        let order: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(order, ["high a", "high b", "low a", "low b", "lowest"]);
    }

    #[test]
    fn a_waiting_thread_wakes_for_an_item_and_leaves_once_closed() {
        let queue = std::sync::Arc::new(RunQueue::default());
        let q = queue.clone();
        let thread = std::thread::spawn(move || std::iter::from_fn(|| q.pop()).count());
        queue.push(1, ());
        queue.push(1, ());
        queue.close();
        assert_eq!(thread.join().expect("thread"), 2);
    }
}
