//! Event fan-out: every subscriber gets every event through its own bounded queue. One that
//! falls more than [`EVENT_QUEUE`] events behind loses the oldest and is told how many it
//! lost ([`Lagged`]), as tokio's broadcast channel does; it never stalls the driver.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bt_proto::engine::Event;
use futures_lite::Stream;

/// Events buffered per subscriber: a check of a torrent of a few thousand pieces fits
/// (one event per piece), while a subscriber that stopped reading holds at most a few
/// hundred KiB. One that falls further behind skips the oldest and gets a [`Lagged`].
pub const EVENT_QUEUE: usize = 4096;

/// A subscriber fell behind: this many events, the oldest it had not read, were dropped
/// from its queue just before the next one it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the event subscriber fell behind and missed {0} events")]
pub struct Lagged(pub u64);

/// Locks `m`, whatever a panicking holder did: every holder leaves the state consistent
/// (it only pushes, pops and counts).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One subscriber's queue, shared by the fan-out (pushing) and its [`Events`] (popping).
#[derive(Debug)]
struct Queue {
    capacity: usize,
    state: Mutex<QueueState>,
}

#[derive(Debug, Default)]
struct QueueState {
    events: VecDeque<Event>,
    /// Dropped since the subscriber last read: all older than `events`' first.
    missed: u64,
    closed: bool,
    waker: Option<Waker>,
}

impl Queue {
    fn new(capacity: usize, closed: bool) -> Self {
        Queue {
            capacity,
            state: Mutex::new(QueueState {
                closed,
                ..QueueState::default()
            }),
        }
    }

    fn push(&self, e: &Event) {
        let mut s = lock(&self.state);
        if s.events.len() >= self.capacity {
            s.events.pop_front();
            s.missed += 1;
        }
        s.events.push_back(e.clone());
        let waker = s.waker.take();
        drop(s);
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn close(&self) {
        let mut s = lock(&self.state);
        s.closed = true;
        let waker = s.waker.take();
        drop(s);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The subscribers of one source of events (a torrent, or the whole session). Its streams
/// end when it is closed or dropped.
#[derive(Debug, Default)]
pub(crate) struct Fanout {
    state: Mutex<FanoutState>,
}

#[derive(Debug, Default)]
struct FanoutState {
    subscribers: Vec<Arc<Queue>>,
    closed: bool,
}

impl Fanout {
    /// A new subscriber, seeing events from now on (none, if the source has ended).
    pub(crate) fn subscribe(&self) -> Events {
        self.subscribe_with(EVENT_QUEUE)
    }

    /// A subscriber holding only the latest event: a wake-up for a waiter that looks at the
    /// state again whatever happened (a streaming reader), without a queue's memory.
    pub(crate) fn subscribe_latest(&self) -> Events {
        self.subscribe_with(1)
    }

    fn subscribe_with(&self, capacity: usize) -> Events {
        let mut s = lock(&self.state);
        let queue = Arc::new(Queue::new(capacity, s.closed));
        if !s.closed {
            s.subscribers.push(queue.clone());
        }
        Events { queue }
    }

    /// Delivers `e` to every subscriber still listening.
    pub(crate) fn send(&self, e: &Event) {
        // A queue only the fan-out holds has lost its reader.
        lock(&self.state).subscribers.retain(|q| {
            let live = Arc::strong_count(q) > 1;
            if live {
                q.push(e);
            }
            live
        });
    }

    /// Ends every subscriber's stream, and those of later subscribers at once.
    pub(crate) fn close(&self) {
        let mut s = lock(&self.state);
        s.closed = true;
        for q in s.subscribers.drain(..) {
            q.close();
        }
    }
}

impl Drop for Fanout {
    fn drop(&mut self) {
        self.close();
    }
}

/// A stream of events: `Ok(event)`, or `Err(Lagged(n))` where a subscriber that fell more
/// than [`EVENT_QUEUE`] events behind lost the `n` oldest. It ends (`None`) when its source
/// does: a torrent's when the torrent is removed or its session shuts down, the session's
/// when the session shuts down.
///
/// A lag does not end the stream: read on after it (`while let Some(Ok(e))` would stop at
/// the first one).
///
/// ```no_run
/// # async fn f(mut events: bt_adapter::Events) {
/// use bt_adapter::events::Lagged;
///
/// while let Some(item) = events.next().await {
///     match item {
///         Ok(event) => println!("{event:?}"),
///         Err(Lagged(n)) => eprintln!("{n} events missed; counters from `stats()` are exact"),
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Events {
    queue: Arc<Queue>,
}

impl Events {
    /// The next event (or lag), or `None` once the stream has ended: no extra crate needed
    /// to read events (the stream also implements `futures_core::Stream`).
    pub async fn next(&mut self) -> Option<Result<Event, Lagged>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for Events {
    type Item = Result<Event, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut s = lock(&self.queue.state);
        if s.missed > 0 {
            return Poll::Ready(Some(Err(Lagged(std::mem::take(&mut s.missed)))));
        }
        if let Some(e) = s.events.pop_front() {
            return Poll::Ready(Some(Ok(e)));
        }
        if s.closed {
            return Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bt_proto::engine::TorrentId;
    use futures_lite::StreamExt;

    fn complete(n: u32) -> Event {
        Event::Complete {
            torrent: TorrentId(n),
        }
    }

    fn collect(events: Events) -> Vec<Result<Event, Lagged>> {
        futures_lite::future::block_on(events.collect())
    }

    #[test]
    fn a_slow_subscriber_is_told_how_many_it_missed() {
        let f = Fanout::default();
        let slow = f.subscribe();
        for i in 0..(EVENT_QUEUE as u32 + 3) {
            f.send(&complete(i));
        }
        f.close();
        let got = collect(slow);
        assert_eq!(got.len(), EVENT_QUEUE + 1);
        assert_eq!(got.first(), Some(&Err(Lagged(3))));
        assert_eq!(got.get(1), Some(&Ok(complete(3))));
        assert_eq!(got.last(), Some(&Ok(complete(EVENT_QUEUE as u32 + 2))));
    }

    #[test]
    fn a_lag_is_reported_where_the_events_were_lost() {
        let f = Fanout::default();
        let mut s = f.subscribe_with(2);
        let mut next = || futures_lite::future::block_on(s.next());
        for i in 0..3 {
            f.send(&complete(i));
        }
        assert_eq!(next(), Some(Err(Lagged(1))));
        assert_eq!(next(), Some(Ok(complete(1))));
        for i in 3..6 {
            f.send(&complete(i));
        }
        // 2 and 3 were the oldest unread when 4 and 5 came.
        assert_eq!(next(), Some(Err(Lagged(2))));
        assert_eq!(next(), Some(Ok(complete(4))));
        assert_eq!(next(), Some(Ok(complete(5))));
    }

    #[test]
    fn a_latest_subscriber_holds_the_last_event() {
        let f = Fanout::default();
        let latest = f.subscribe_latest();
        for i in 0..5 {
            f.send(&complete(i));
        }
        f.close();
        assert_eq!(collect(latest), vec![Err(Lagged(4)), Ok(complete(4))]);
    }

    #[test]
    fn a_dropped_subscriber_is_forgotten() {
        let f = Fanout::default();
        drop(f.subscribe());
        let mut live = f.subscribe();
        f.send(&complete(1));
        assert_eq!(lock(&f.state).subscribers.len(), 1);
        assert_eq!(
            futures_lite::future::block_on(live.next()),
            Some(Ok(complete(1)))
        );
    }

    #[test]
    fn streams_end_when_the_source_closes_or_goes() {
        let f = Fanout::default();
        let before = f.subscribe();
        f.send(&complete(1));
        f.close();
        assert_eq!(collect(before), vec![Ok(complete(1))]);
        assert_eq!(collect(f.subscribe()), vec![]);
        let g = Fanout::default();
        let orphan = g.subscribe();
        drop(g);
        assert_eq!(collect(orphan), vec![]);
    }
}
