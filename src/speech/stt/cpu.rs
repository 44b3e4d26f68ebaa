//! The machine's cores, shared out among concurrent decodes.
//!
//! whisper.cpp's worker threads meet at spinning barriers after every
//! operation of the graph. A decode on two threads is fast while it has two
//! cores to itself, and dozens of times slower as soon as another decode
//! shares them: measured on 2 cores, a 3.5 s utterance takes 300 ms on two
//! threads alone, 550 ms on one thread with another one-thread decode
//! beside it, and 12 s on two threads beside another two-thread decode.
//! So a decode takes as many threads as there are idle cores (at least one,
//! at most what it asks for), and waits when none is idle: decodes never
//! oversubscribe the cores among themselves.

use std::sync::{Condvar, Mutex, OnceLock};

/// Cores not taken by a running decode.
pub(crate) struct CpuBudget {
    free: Mutex<usize>,
    freed: Condvar,
}

/// Threads held by one decode, returned when dropped.
pub(crate) struct Cores<'a> {
    budget: &'a CpuBudget,
    pub threads: usize,
}

impl CpuBudget {
    pub fn new(cores: usize) -> CpuBudget {
        CpuBudget {
            free: Mutex::new(cores.max(1)),
            freed: Condvar::new(),
        }
    }

    /// The process's budget: one thread a core.
    pub fn global() -> &'static CpuBudget {
        static BUDGET: OnceLock<CpuBudget> = OnceLock::new();
        BUDGET.get_or_init(|| {
            CpuBudget::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
        })
    }

    /// Blocks until a core is idle, then takes up to `want` idle cores.
    pub fn take(&self, want: usize) -> Cores<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        let threads = want.clamp(1, *free);
        *free -= threads;
        Cores {
            budget: self,
            threads,
        }
    }
}

impl Drop for Cores<'_> {
    fn drop(&mut self) {
        let mut free = self.budget.free.lock().unwrap_or_else(|e| e.into_inner());
        *free += self.threads;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn decodes_share_the_cores_without_oversubscribing() {
        let budget = CpuBudget::new(2);
        let first = budget.take(2);
        assert_eq!(first.threads, 2);
        drop(first);
        let one = budget.take(1);
        let other = budget.take(2);
        assert_eq!((one.threads, other.threads), (1, 1));
    }

    #[test]
    fn a_decode_waits_for_an_idle_core() {
        let budget = Arc::new(CpuBudget::new(2));
        let held = budget.take(2);
        let waiter = {
            let budget = budget.clone();
            std::thread::spawn(move || budget.take(2).threads)
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "took a core while none was idle");
        drop(held);
        assert_eq!(waiter.join().unwrap(), 2);
    }
}
