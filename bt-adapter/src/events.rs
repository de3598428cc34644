//! Event fan-out: every subscriber gets every event through its own bounded queue; one that
//! falls more than [`EVENT_QUEUE`] events behind loses the oldest, never stalls the driver.

use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use async_channel::{Receiver, Sender};
use bt_proto::engine::Event;
use futures_lite::Stream;

/// Events buffered per subscriber; a subscriber that falls further behind skips the oldest.
pub const EVENT_QUEUE: usize = 4096;

/// The subscribers of one source of events (a torrent, or the whole session).
#[derive(Debug, Default)]
pub(crate) struct Fanout {
    subscribers: Mutex<Vec<Sender<Event>>>,
}

impl Fanout {
    fn subscribers(&self) -> MutexGuard<'_, Vec<Sender<Event>>> {
        // The list stays valid whatever a panicking holder did: it only adds and removes.
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new subscriber, seeing events from now on.
    pub(crate) fn subscribe(&self) -> Events {
        self.subscribe_with(EVENT_QUEUE)
    }

    /// A subscriber holding only the latest event: a wake-up for a waiter that looks at the
    /// state again whatever happened (a streaming reader), without a queue's memory.
    pub(crate) fn subscribe_latest(&self) -> Events {
        self.subscribe_with(1)
    }

    fn subscribe_with(&self, capacity: usize) -> Events {
        let (tx, rx) = async_channel::bounded(capacity);
        self.subscribers().push(tx);
        Events(Box::pin(rx))
    }

    /// Delivers `e` to every subscriber still listening.
    pub(crate) fn send(&self, e: &Event) {
        self.subscribers()
            .retain(|tx| tx.force_send(e.clone()).is_ok());
    }

    /// Ends every subscriber's stream.
    pub(crate) fn close(&self) {
        self.subscribers().clear();
    }
}

/// A stream of events; a subscriber that falls more than [`EVENT_QUEUE`] events behind skips
/// the oldest ones. It ends when its source (torrent or session) is gone.
#[derive(Debug)]
pub struct Events(Pin<Box<Receiver<Event>>>);

impl Events {
    /// The next event, or `None` once the stream has ended: no extra crate needed to read
    /// events (the stream also implements `futures_core::Stream`).
    ///
    /// ```no_run
    /// # async fn f(mut events: bt_adapter::Events) {
    /// while let Some(event) = events.next().await {
    ///     println!("{event:?}");
    /// }
    /// # }
    /// ```
    pub async fn next(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.0.as_mut().poll_next(cx)).await
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.0.as_mut().poll_next(cx)
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

    #[test]
    fn a_slow_subscriber_skips_the_oldest() {
        let f = Fanout::default();
        let slow = f.subscribe();
        for i in 0..(EVENT_QUEUE as u32 + 3) {
            f.send(&complete(i));
        }
        f.close();
        let got: Vec<Event> = futures_lite::future::block_on(slow.collect());
        assert_eq!(got.len(), EVENT_QUEUE);
        assert_eq!(got.first(), Some(&complete(3)));
    }

    #[test]
    fn a_latest_subscriber_holds_the_last_event() {
        let f = Fanout::default();
        let latest = f.subscribe_latest();
        for i in 0..5 {
            f.send(&complete(i));
        }
        f.close();
        let got: Vec<Event> = futures_lite::future::block_on(latest.collect());
        assert_eq!(got, vec![complete(4)]);
    }

    #[test]
    fn a_dropped_subscriber_is_forgotten() {
        let f = Fanout::default();
        drop(f.subscribe());
        let mut live = f.subscribe();
        f.send(&complete(1));
        assert_eq!(f.subscribers().len(), 1);
        assert_eq!(
            futures_lite::future::block_on(live.next()),
            Some(complete(1))
        );
    }
}
