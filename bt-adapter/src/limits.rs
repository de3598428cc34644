//! What users control of a session's use of the link and of its torrents' turns: rate
//! limits ([`RateLimits`], for the session and for each torrent, set when it starts or at
//! any time after) and the queue (how many downloads and seeds run at once, and in which
//! order they get their turn).
//!
//! The engine decides all of it (`bt_proto::engine`'s `rate_limits` and `queue`): these are
//! the builder options and the handles' methods that reach it, through the driver's command
//! channel as every other call does.

use std::time::Duration;

use bt_proto::engine::{self, RateLimits};

use crate::handle::Handle;
use crate::messages::{Command, reply};
use crate::runtime::Runtime;
use crate::{Error, MagnetTorrent, Session, SessionBuilder, Torrent};

impl<R: Runtime> SessionBuilder<R> {
    /// The session's upload and download limits in bytes per second, shared by all its
    /// torrents (default: none; 0 either way is none). Each torrent may have its own besides
    /// ([`crate::TorrentOptions::rate_limits`]); [`Session::set_rate_limits`] changes these
    /// at run time. Sets [`engine::Config::rate_limits`].
    ///
    /// ```
    /// use bt_adapter::{RateLimits, Runtime, Session, TorrentOptions};
    ///
    /// async fn limited<R: Runtime>() -> Result<(), bt_adapter::Error> {
    ///     // At most 2 MiB/s up for the whole session, and two downloads at a time.
    ///     let session = Session::<R>::builder()
    ///         .rate_limits(RateLimits { upload: 2 << 20, download: 0 })
    ///         .max_active_downloads(2)
    ///         .start()
    ///         .await?;
    ///     // This torrent downloads at 500 KiB/s at most, within the session's limits.
    ///     let torrent = session
    ///         .add_torrent(
    ///             TorrentOptions::from_path("big.torrent")
    ///                 .rate_limits(RateLimits { upload: 0, download: 500 << 10 }),
    ///         )
    ///         .await?;
    ///     // Later: lift the session's upload limit, and put this torrent first in the queue.
    ///     session.set_rate_limits(RateLimits::NONE).await?;
    ///     torrent.set_queue_position(0).await?;
    ///     Ok(())
    /// }
    /// ```
    pub fn rate_limits(self, limits: RateLimits) -> Self {
        self.config(move |c| c.rate_limits = limits)
    }

    /// Whether the limits count each block's framing (the PIECE message's header, and our
    /// REQUEST for a download) besides its payload (default: no, the limits are on
    /// payload). Sets [`engine::Config::rate_limit_overhead`].
    pub fn rate_limit_overhead(self, on: bool) -> Self {
        self.config(move |c| c.rate_limit_overhead = on)
    }

    /// Whether peers on loopback, private, link-local and unique-local addresses are exempt
    /// from every limit (default: no). Sets [`engine::Config::rate_limit_exempt_local`].
    pub fn rate_limit_exempt_local(self, on: bool) -> Self {
        self.config(move |c| c.rate_limit_exempt_local = on)
    }

    /// How many started torrents still downloading run at once (default: no cap, `None`);
    /// the others are [`crate::TorrentState::Queued`] until one ahead of them completes, is
    /// stopped, paused or removed, or stalls ([`SessionBuilder::stalled_after`]). The order
    /// is the order torrents were added in, unless changed
    /// ([`Torrent::set_queue_position`]). Sets [`engine::Config::max_active_downloads`].
    pub fn max_active_downloads(self, n: impl Into<Option<usize>>) -> Self {
        let n = n.into();
        self.config(move |c| c.max_active_downloads = n)
    }

    /// How many started torrents with every wanted piece (seeds) run at once (default: no
    /// cap, `None`); the others are [`crate::TorrentState::Queued`]. Sets
    /// [`engine::Config::max_active_seeds`].
    pub fn max_active_seeds(self, n: impl Into<Option<usize>>) -> Self {
        let n = n.into();
        self.config(move |c| c.max_active_seeds = n)
    }

    /// A running download that received no payload for this long holds no queue slot, so
    /// the next one starts beside it (default [`engine::DEFAULT_STALLED_AFTER`], two
    /// minutes). Sets [`engine::Config::stalled_after`].
    pub fn stalled_after(self, after: Duration) -> Self {
        self.config(move |c| c.stalled_after = after)
    }
}

impl<R: Runtime> Session<R> {
    /// Sets the session's limits from now on (0 either way lifts that limit); blocks already
    /// asked for arrive as they were asked.
    pub async fn set_rate_limits(&self, limits: RateLimits) -> Result<(), Error> {
        self.run_engine(move |s, now| s.set_rate_limits(now, limits))
            .await
    }

    /// The session's limits.
    pub async fn rate_limits(&self) -> Result<RateLimits, Error> {
        self.run_engine(|s, _| s.rate_limits()).await
    }

    /// Runs `f` on the engine and returns its answer.
    async fn run_engine<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut engine::Session, std::time::Instant) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = reply();
        let job = Box::new(move |s: &mut engine::Session, now| {
            let _ = tx.try_send(Ok(f(s, now)));
        });
        self.command(Command::Run(job), rx).await
    }
}

impl<R: Runtime> Handle<R> {
    async fn set_rate_limits(&self, limits: RateLimits) -> Result<(), Error> {
        self.query(move |s, id, now| s.set_torrent_rate_limits(now, id, limits).then_some(()))
            .await
    }

    async fn rate_limits(&self) -> Result<RateLimits, Error> {
        self.query(|s, id, _| s.torrent_rate_limits(id)).await
    }

    async fn queue_position(&self) -> Result<usize, Error> {
        self.query(|s, id, _| s.queue_position(id)).await
    }

    async fn set_queue_position(&self, position: usize) -> Result<(), Error> {
        self.query(move |s, id, now| s.set_queue_position(now, id, position).then_some(()))
            .await
    }
}

impl<R: Runtime> Torrent<R> {
    /// Sets this torrent's own limits from now on (0 either way lifts that limit); the
    /// session's apply too ([`Session::set_rate_limits`]), so the lower of the two holds.
    pub async fn set_rate_limits(&self, limits: RateLimits) -> Result<(), Error> {
        self.parts().0.set_rate_limits(limits).await
    }

    /// This torrent's own limits ([`RateLimits::NONE`] unless set).
    pub async fn rate_limits(&self) -> Result<RateLimits, Error> {
        self.parts().0.rate_limits().await
    }

    /// The torrent's place in the session's queue, 0 first: the order in which started
    /// torrents get the slots of [`SessionBuilder::max_active_downloads`] and
    /// [`SessionBuilder::max_active_seeds`].
    pub async fn queue_position(&self) -> Result<usize, Error> {
        self.parts().0.queue_position().await
    }

    /// Moves the torrent to place `position` of the queue (0 first; the last place if beyond
    /// it). The queue then runs torrents by the new order: a torrent moved ahead of a
    /// running one may start, and the one it overtook wait
    /// ([`crate::TorrentState::Queued`]).
    pub async fn set_queue_position(&self, position: usize) -> Result<(), Error> {
        self.parts().0.set_queue_position(position).await
    }
}

impl<R: Runtime> MagnetTorrent<R> {
    /// As [`Torrent::set_rate_limits`]; the metadata is fetched within them too.
    pub async fn set_rate_limits(&self, limits: RateLimits) -> Result<(), Error> {
        self.handle().set_rate_limits(limits).await
    }

    /// As [`Torrent::rate_limits`].
    pub async fn rate_limits(&self) -> Result<RateLimits, Error> {
        self.handle().rate_limits().await
    }

    /// As [`Torrent::queue_position`].
    pub async fn queue_position(&self) -> Result<usize, Error> {
        self.handle().queue_position().await
    }

    /// As [`Torrent::set_queue_position`].
    pub async fn set_queue_position(&self, position: usize) -> Result<(), Error> {
        self.handle().set_queue_position(position).await
    }
}
