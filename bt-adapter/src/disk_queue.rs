//! Disk jobs run in order by a bounded number of workers on the runtime's blocking pool.
//!
//! A worker takes jobs from the queue until it is empty and sends each job's message to the
//! driver itself: handing every job to the pool on its own cost a thread wake-up or two per
//! job, which left the cores idle during hashchecks (PERF.md, "Disk jobs").

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use async_channel::{Sender, TrySendError};

use crate::runtime::Runtime;

/// A job for the blocking pool; what it returns is sent to the driver.
pub(crate) type DiskJob<M> = Box<dyn FnOnce() -> M + Send>;

/// Jobs waiting, and how many workers are taking them.
struct State<M> {
    jobs: VecDeque<DiskJob<M>>,
    workers: usize,
}

/// A queue of disk jobs with at most `max_workers` of them running at once, each job's
/// message sent to one channel.
pub(crate) struct DiskQueue<M> {
    state: Mutex<State<M>>,
    max_workers: usize,
    tx: Sender<M>,
    /// The message sent in place of a job's that panicked, so the receiver still learns that
    /// the job is over (the driver counts the jobs in flight).
    on_panic: fn() -> M,
}

impl<M: Send + 'static> DiskQueue<M> {
    /// A queue whose jobs run at most `max_workers` (at least one) at a time and report to
    /// `tx`; a job that panics reports `on_panic()` instead.
    pub(crate) fn new(max_workers: usize, tx: Sender<M>, on_panic: fn() -> M) -> Arc<Self> {
        Arc::new(DiskQueue {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                workers: 0,
            }),
            max_workers: max_workers.max(1),
            tx,
            on_panic,
        })
    }

    fn state(&self) -> MutexGuard<'_, State<M>> {
        // Jobs run outside the lock, so a panic cannot leave the queue half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job` behind the others. True when the caller must start a worker (run
    /// [`DiskQueue::work`] on a pool thread): fewer than the limit were running.
    #[must_use]
    pub(crate) fn push(&self, job: DiskJob<M>) -> bool {
        let mut s = self.state();
        s.jobs.push_back(job);
        let start = s.workers < self.max_workers;
        if start {
            s.workers += 1;
        }
        start
    }

    /// A worker: takes and runs jobs until none is left. It stops counting as running when it
    /// finds the queue empty, under the lock, so a job pushed meanwhile starts a new worker.
    /// A message the driver's queue has no room for goes to `full`, which must deliver it
    /// without blocking: a worker waiting for the driver would hold back the jobs behind it
    /// (a resume save behind a busy driver's piece stores) for as long as the driver is busy.
    pub(crate) fn work(&self, full: impl Fn(M)) {
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
            match self.tx.try_send(job()) {
                Ok(()) => {}
                Err(TrySendError::Full(msg)) => full(msg),
                // The driver is gone; nobody wants the rest.
                Err(TrySendError::Closed(_)) => return,
            }
        }
    }

    /// Queues `job`, starting a worker on `R`'s blocking pool if one is needed.
    pub(crate) fn spawn<R: Runtime>(self: &Arc<Self>, job: DiskJob<M>) {
        if self.push(job) {
            let queue = self.clone();
            R::detach(R::spawn(async move { queue.worker::<R>().await }));
        }
    }

    /// Runs [`DiskQueue::work`] on the blocking pool, again after a job panicked.
    async fn worker<R: Runtime>(self: Arc<Self>) {
        loop {
            let queue = self.clone();
            let deliver = move |msg| {
                let tx = queue.tx.clone();
                R::detach(R::spawn(async move {
                    let _ = tx.send(msg).await;
                }));
            };
            let queue = self.clone();
            if R::unblock(move || queue.work(deliver)).await.is_some() {
                return;
            }
            // The panicked job's message is lost. Tell the driver that job is over, so a
            // shutdown does not wait for it, and go on with the rest on a fresh pool thread
            // (this worker still counts as running).
            if self.tx.send((self.on_panic)()).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread::JoinHandle;
    use std::time::Duration;

    /// The message of a job that panicked, in these tests.
    fn panicked() -> usize {
        usize::MAX
    }

    /// Pushes `job`, running a worker on a new thread when the queue asks for one.
    fn push(
        q: &Arc<DiskQueue<usize>>,
        job: impl FnOnce() -> usize + Send + 'static,
    ) -> Option<JoinHandle<()>> {
        q.push(Box::new(job)).then(|| {
            let q = q.clone();
            std::thread::spawn(move || {
                let tx = q.tx.clone();
                q.work(move |msg| {
                    let _ = tx.send_blocking(msg);
                })
            })
        })
    }

    #[test]
    fn no_more_than_the_limit_run_at_once_and_every_job_reports() {
        let (tx, rx) = async_channel::unbounded();
        let q = DiskQueue::new(2, tx, panicked);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for i in 0..40 {
            let (running, most) = (running.clone(), most.clone());
            workers.extend(push(&q, move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
                running.fetch_sub(1, Ordering::SeqCst);
                i
            }));
        }
        for w in workers {
            w.join().unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= 2);
        let mut got: Vec<usize> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..40).collect::<Vec<_>>());
    }

    #[test]
    fn one_worker_runs_jobs_in_order() {
        let (tx, rx) = async_channel::unbounded();
        let q = DiskQueue::new(1, tx, panicked);
        // The first job holds the worker until every other job is queued behind it.
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let first = push(&q, move || {
            let _ = wait.recv();
            0
        });
        for i in 1..10 {
            assert!(push(&q, move || i).is_none(), "a second worker started");
        }
        go.send(()).unwrap();
        first
            .expect("the first job starts a worker")
            .join()
            .unwrap();
        let got: Vec<usize> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_job_pushed_after_the_queue_emptied_starts_a_new_worker() {
        let (tx, rx) = async_channel::unbounded();
        let q = DiskQueue::new(1, tx, panicked);
        push(&q, || 1).expect("a worker").join().unwrap();
        // The worker has left; a later job must not wait for it.
        push(&q, || 2).expect("a new worker").join().unwrap();
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(2));
    }

    #[test]
    fn a_worker_stops_when_the_driver_is_gone() {
        let (tx, rx) = async_channel::unbounded();
        let q = DiskQueue::new(1, tx, panicked);
        drop(rx);
        let ran = Arc::new(AtomicUsize::new(0));
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let r = ran.clone();
        let worker = push(&q, move || {
            let _ = wait.recv();
            r.fetch_add(1, Ordering::SeqCst);
            0
        });
        for _ in 0..5 {
            let r = ran.clone();
            assert!(
                push(&q, move || {
                    r.fetch_add(1, Ordering::SeqCst);
                    0
                })
                .is_none()
            );
        }
        go.send(()).unwrap();
        worker.expect("a worker").join().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1, "jobs ran for nobody");
    }

    #[test]
    fn a_full_driver_queue_does_not_hold_back_later_jobs() {
        let (tx, rx) = async_channel::bounded(1);
        let q = DiskQueue::new(1, tx, panicked);
        // Queued before any worker runs, so one worker takes them all.
        assert!(q.push(Box::new(|| 1)));
        assert!(!q.push(Box::new(|| 2)));
        assert!(!q.push(Box::new(|| 3)));
        let overflow = Mutex::new(Vec::new());
        q.work(|msg| overflow.lock().unwrap().push(msg));
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(overflow.into_inner().unwrap(), vec![2, 3]);
    }
}
