//! The epoch ticker: one thread per worker that advances the engine's epoch every [`TICK`]
//! while some instance runs (or is being made), so each checks its shard's cancel flag and
//! deadline; it sleeps while none does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use wasmtime::Engine;

/// How often the ticker advances the engine's epoch: how soon a running instance notices a
/// cancel or its deadline.
const TICK: Duration = Duration::from_millis(1);

/// The thread that advances the engine's epoch every [`TICK`] while some instance runs, and
/// sleeps otherwise. It ends when its runtime is dropped.
pub(crate) struct Ticker {
    active: Arc<AtomicUsize>,
    thread: std::thread::Thread,
}

/// An instance running: keeps the ticker going until dropped.
pub(crate) struct Running<'a>(&'a Ticker);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Ticker {
    pub fn spawn(engine: Engine) -> std::io::Result<Self> {
        let active = Arc::new(AtomicUsize::new(0));
        let weak: Weak<AtomicUsize> = Arc::downgrade(&active);
        let handle =
            std::thread::Builder::new().name("farm-wasm-epoch".into()).spawn(move || {
                loop {
                    let busy = match weak.upgrade() {
                        Some(active) => active.load(Ordering::SeqCst) > 0,
                        None => return,
                    };
                    if busy {
                        std::thread::sleep(TICK);
                        engine.increment_epoch();
                    } else {
                        // Woken by the next instance that starts (or, rarely, to see if the
                        // runtime is gone).
                        std::thread::park_timeout(Duration::from_secs(10));
                    }
                }
            })?;
        Ok(Ticker { active, thread: handle.thread().clone() })
    }

    pub fn enter(&self) -> Running<'_> {
        if self.active.fetch_add(1, Ordering::SeqCst) == 0 {
            self.thread.unpark();
        }
        Running(self)
    }
}
