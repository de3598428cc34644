//! Disk jobs run in order by a bounded number of workers on the runtime's blocking pool.
//!
//! A worker takes jobs from the queue until it is empty and sends each job's message to the
//! driver itself. Handing every job to the pool on its own (a task waiting for a permit, then
//! a hand-off to a pool thread, then the permit passed on) cost a thread wake-up or two per
//! job; on this project's 2-core test machine that left the cores idle for a third of a
//! hashcheck of 4 MiB pieces (measured with `perf record -e cpu-clock`: 70 % busy).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use async_channel::Sender;

use crate::driver::Msg;
use crate::runtime::Runtime;

/// A job for the blocking pool; what it returns is sent to the driver.
pub(crate) type DiskJob<R> = Box<dyn FnOnce() -> Msg<R> + Send>;

/// Jobs waiting, and how many workers are taking them.
struct State<R: Runtime> {
    jobs: VecDeque<DiskJob<R>>,
    workers: usize,
}

/// A queue of disk jobs with at most `max_workers` of them running at once.
pub(crate) struct DiskQueue<R: Runtime> {
    state: Mutex<State<R>>,
    max_workers: usize,
    /// Where each job's message goes.
    tx: Sender<Msg<R>>,
}

impl<R: Runtime> DiskQueue<R> {
    /// A queue whose jobs run at most `max_workers` (at least one) at a time and report to `tx`.
    pub(crate) fn new(max_workers: usize, tx: Sender<Msg<R>>) -> Arc<Self> {
        Arc::new(DiskQueue {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                workers: 0,
            }),
            max_workers: max_workers.max(1),
            tx,
        })
    }

    fn state(&self) -> MutexGuard<'_, State<R>> {
        // Jobs run outside the lock, so a panic cannot leave the queue half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job` behind the others; starts a worker if fewer than the limit are running.
    pub(crate) fn push(self: &Arc<Self>, job: DiskJob<R>) {
        let start = {
            let mut s = self.state();
            s.jobs.push_back(job);
            let start = s.workers < self.max_workers;
            if start {
                s.workers += 1;
            }
            start
        };
        if start {
            let queue = self.clone();
            R::detach(R::spawn(async move { queue.worker().await }));
        }
    }

    /// Runs jobs on the blocking pool until the queue is empty.
    async fn worker(self: Arc<Self>) {
        loop {
            let queue = self.clone();
            if R::unblock(move || queue.work()).await.is_some() {
                return;
            }
            // A job panicked: its message is lost. Tell the driver the job is over, so a
            // shutdown does not wait for it, and go on with the rest on a fresh pool thread
            // (this worker still counts as running).
            if self.tx.send(Msg::DiskDone).await.is_err() {
                return;
            }
        }
    }

    /// Takes and runs jobs until none is left; the worker stops counting as running when it
    /// finds the queue empty (under the lock, so a job pushed meanwhile starts a new one).
    fn work(&self) {
        loop {
            let job = {
                let mut s = self.state();
                match s.jobs.pop_front() {
                    Some(job) => job,
                    None => {
                        s.workers = s.workers.saturating_sub(1);
                        return;
                    }
                }
            };
            // Blocks this pool thread while the driver's queue is full: the disk keeps pace
            // with the driver, never ahead of it.
            if self.tx.send_blocking(job()).is_err() {
                // The driver is gone; nobody wants the rest.
                return;
            }
        }
    }
}
