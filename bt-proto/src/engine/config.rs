//! Session configuration, with named defaults and the reason for each.

use std::time::Duration;

use crate::PeerId;
use crate::mse::Encryption;

/// Inbound connections per session. With [`DEFAULT_MAX_OUTGOING`] it makes 400: enough for
/// many torrents, within a default descriptor limit of 1024 with room for files. Inbound and
/// outbound have budgets of their own, so a flood of inbound connections never takes the
/// slots our own dials need.
pub const DEFAULT_MAX_INCOMING: usize = 200;
/// Outbound connections per session; see [`DEFAULT_MAX_INCOMING`].
pub const DEFAULT_MAX_OUTGOING: usize = 200;
/// Inbound connections still handshaking, per session: a flood of silent connections holds at
/// most this many slots (each for at most the handshake time-out) while established peers
/// keep theirs and real peers still get in.
pub const DEFAULT_MAX_INCOMING_HANDSHAKES: usize = 32;
/// Inbound connections still handshaking from one host: a few users behind one NAT connect at
/// once, one host alone cannot fill [`DEFAULT_MAX_INCOMING_HANDSHAKES`].
pub const DEFAULT_MAX_INCOMING_HANDSHAKES_PER_HOST: usize = 4;
/// Connections per torrent: past about 50 peers a torrent gains little and pays in memory.
pub const DEFAULT_MAX_CONNECTIONS_PER_TORRENT: usize = 60;
/// Connections per torrent to one IP address. One, as libtorrent: a host cannot crowd out
/// the others, and an address the smart ban blames is one peer. Tests on loopback, where
/// every peer is 127.0.0.1, raise it.
pub const DEFAULT_MAX_CONNECTIONS_PER_HOST: usize = 1;
/// Outbound connections being opened at once: many dead addresses from a tracker should not
/// use up the connection budget while they time out.
pub const DEFAULT_MAX_HALF_OPEN: usize = 32;
/// Peers we upload to at once per torrent, the optimistic unchoke included: 3 regular and
/// 1 optimistic, as BEP 3 suggests ([`crate::choker::DEFAULT_SLOTS`]). Few slots give each
/// peer a large share, so a piece reaches it whole in seconds and it can pass it on: split 8
/// ways, a 1 Mbit/s uplink gives each peer 15 KB/s, 17 s per 256 KiB piece. Measured on the
/// efficiency bench (issue 19) against 8: 1 + 10 × 256 MiB 0.844 -> 0.951 of the bound,
/// 1 + 100 × 256 MiB 0.910 -> 0.938 (mean completion 0.925 -> 1.056), 1 + 500 × 32 MiB
/// 0.663 -> 0.649 (mean 0.769 -> 0.810); 2 and 3 slots did as well at 10 leechers, 16
/// worse.
pub const DEFAULT_UPLOAD_SLOTS: usize = 4;
/// Requests we keep in flight to a peer before its rate is known: 16 blocks cover 256 KiB,
/// the bandwidth-delay product of about 40 Mbit/s at 50 ms.
pub const DEFAULT_INITIAL_REQUEST_DEPTH: usize = 16;
/// Most requests in flight to one peer. 500 blocks (8 MiB) cover 1 GB/s at 8 ms: loopback and
/// LAN speeds; libtorrent's own ceiling is the same.
pub const DEFAULT_MAX_REQUEST_DEPTH: usize = 500;
/// Seconds of a peer's measured rate to keep requested ahead, so the pipe never drains
/// between a block's arrival and the next request's.
pub const DEFAULT_REQUEST_QUEUE_SECONDS: u64 = 2;
/// Requests a peer may have queued with us; more are rejected. 500 matches libtorrent's
/// `max_allowed_in_request_queue`; each costs a few bytes until it is read.
pub const DEFAULT_MAX_PEER_REQUESTS: usize = 500;
/// Block reads in flight per peer: enough to keep a fast link busy while bounding the
/// memory of blocks read but not yet sent.
pub const DEFAULT_MAX_READS_IN_FLIGHT: usize = 32;
/// A peer that sent no block for this long while we had requests out is snubbed: its
/// requests go to other peers and it keeps one request until it delivers again.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// BEP 3 suggests keep-alives every two minutes; peers drop us after about that long.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(110);
/// Close a connection that sent nothing, not even a keep-alive, for this long.
pub const DEFAULT_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(240);
/// A handshake must complete within this time.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// Memory held by received blocks of pieces not yet stored (downloading, or being hashed and
/// written), per torrent. 16 MiB covers the 8 MiB of [`DEFAULT_MAX_REQUEST_DEPTH`] blocks in
/// flight plus as much again waiting for the disk, and keeps a leecher's memory small (the
/// picker always allows two pieces, whatever their length).
pub const DEFAULT_MAX_INFLIGHT_BYTES: u64 = 16 * 1024 * 1024;
/// Hash failures a peer may take part in before it is banned. One failure can be bad luck
/// (another peer's block in the same piece); three is a pattern.
pub const DEFAULT_BAN_STRIKES: u32 = 3;
/// Peers asked of trackers per announce.
pub const DEFAULT_NUMWANT: u32 = 50;
/// When addresses are due for a dial but the connection budget is spent, the torrent looks
/// again this often: a slot freed by another torrent's connection does not call it.
pub const DIAL_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// A torrent whose verified pieces changed saves its resume data within this time, so a
/// crash costs at most this much downloading; each save syncs the torrent's files, which is
/// cheap at this rate.
pub const DEFAULT_RESUME_SAVE_INTERVAL: Duration = Duration::from_secs(30);

/// How long a running download may receive no payload before it holds no queue slot: two
/// minutes. A torrent that just started needs its first tracker replies and DHT lookups
/// (tens of seconds) and its peers' unchokes (a choke round is 10 s) before payload comes,
/// so less would start the whole queue at once; much more would let a dead swarm hold a
/// slot for long.
pub const DEFAULT_STALLED_AFTER: Duration = Duration::from_secs(120);

/// Everything the engine ([`engine::Session`](crate::engine::Session)) can be tuned by;
/// an adapter's `SessionBuilder::config` hands it over.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our peer id.
    pub peer_id: PeerId,
    /// The port we listen on, announced to trackers and peers.
    pub listen_port: u16,
    /// Seed of the engine's random choices: same seed, same inputs, same outputs.
    pub seed: u64,
    /// See [`DEFAULT_MAX_INCOMING`].
    pub max_incoming: usize,
    /// See [`DEFAULT_MAX_OUTGOING`].
    pub max_outgoing: usize,
    /// See [`DEFAULT_MAX_INCOMING_HANDSHAKES`].
    pub max_incoming_handshakes: usize,
    /// See [`DEFAULT_MAX_INCOMING_HANDSHAKES_PER_HOST`].
    pub max_incoming_handshakes_per_host: usize,
    /// See [`DEFAULT_MAX_CONNECTIONS_PER_TORRENT`].
    pub max_connections_per_torrent: usize,
    /// See [`DEFAULT_MAX_CONNECTIONS_PER_HOST`].
    pub max_connections_per_host: usize,
    /// See [`DEFAULT_MAX_HALF_OPEN`].
    pub max_half_open: usize,
    /// See [`DEFAULT_UPLOAD_SLOTS`].
    pub upload_slots: usize,
    /// See [`DEFAULT_INITIAL_REQUEST_DEPTH`].
    pub initial_request_depth: usize,
    /// See [`DEFAULT_MAX_REQUEST_DEPTH`].
    pub max_request_depth: usize,
    /// See [`DEFAULT_REQUEST_QUEUE_SECONDS`].
    pub request_queue_seconds: u64,
    /// See [`DEFAULT_MAX_PEER_REQUESTS`].
    pub max_peer_requests: usize,
    /// See [`DEFAULT_MAX_READS_IN_FLIGHT`].
    pub max_reads_in_flight: usize,
    /// See [`DEFAULT_REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// See [`DEFAULT_KEEPALIVE_INTERVAL`].
    pub keepalive_interval: Duration,
    /// See [`DEFAULT_INACTIVITY_TIMEOUT`].
    pub inactivity_timeout: Duration,
    /// See [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub handshake_timeout: Duration,
    /// See [`DEFAULT_MAX_INFLIGHT_BYTES`].
    pub max_inflight_bytes: u64,
    /// See [`DEFAULT_BAN_STRIKES`].
    pub ban_strikes: u32,
    /// See [`DEFAULT_NUMWANT`].
    pub numwant: u32,
    /// Client name and version sent in the extension handshake (`v`).
    pub client_name: String,
    /// See [`DEFAULT_RESUME_SAVE_INTERVAL`]; `None` saves only when a torrent completes or
    /// stops.
    pub resume_save_interval: Option<Duration>,
    /// Peer exchange (BEP 11) on torrents that are not private: peers are told which peers
    /// we are connected to, and what they tell us is dialled. On by default, as in every
    /// common client: it finds peers when trackers are slow or down and costs one small
    /// message a minute per peer.
    pub pex: bool,
    /// Local service discovery (BEP 14) for torrents that are not private: the session
    /// multicasts which swarms it is in ([`super::Output::SendMulticast`]) and dials the
    /// local peers that announce ours ([`super::Input::MulticastReceived`]). On by default,
    /// as in libtorrent, Transmission and qBittorrent: peers on one LAN find each other
    /// without a tracker, at one small datagram a minute to each group at most.
    pub lsd: bool,
    /// The DHT (BEP 5) for torrents that are not private: the session runs a node on its
    /// UDP port ([`super::Input::Datagram`], [`super::Output::SendDatagram`]), looks up
    /// peers of each torrent when it starts and every [`super::DHT_SEARCH_INTERVAL`], and
    /// announces itself. Off by default in the engine (the simulator and integrators opt
    /// in); the adapters turn it on by default.
    pub dht: bool,
    /// Runs the DHT node read-only (BEP 43): it asks, never answers, and other nodes keep
    /// it out of their tables.
    pub dht_read_only: bool,
    /// Message stream encryption ([`crate::mse`]): whether connections may, must or must not
    /// be encrypted. [`Encryption::Disabled`] in the engine's defaults, so that simulations
    /// and integrators of the bare engine choose it (it costs a Diffie-Hellman exchange per
    /// connection); the adapter's `SessionBuilder` uses [`Encryption::Enabled`], as
    /// libtorrent does.
    pub encryption: Encryption,
    /// The DHT node's id: the one of a saved table ([`crate::dht::saved::SavedTable`]), so
    /// that the nodes that know us find us where they expect after a restart. `None` (the
    /// default) draws a random one.
    pub dht_id: Option<crate::dht::NodeId>,
    /// The transports peer connections may use: TCP, uTP ([`crate::utp`], over the session's
    /// UDP port) or both (the default, as in libtorrent and Transmission). With both, a peer
    /// known to speak uTP (a PEX `utp` flag, or a uTP connection it opened to us) is dialled
    /// over uTP first and over TCP if that fails; any other peer over TCP.
    pub transports: Transports,
    /// The session's upload and download limits, shared by all its torrents; each torrent
    /// may have its own besides ([`super::AddTorrent::rate_limits`]). None by default.
    /// Changed at run time with [`super::Session::set_rate_limits`].
    pub rate_limits: RateLimits,
    /// Whether the limits count the protocol's framing of each block (the PIECE header,
    /// and our REQUEST for downloads) besides its payload. Off by default: the limits are on
    /// payload, the figure users compare with what they set.
    pub rate_limit_overhead: bool,
    /// Whether peers on loopback, private, link-local and unique-local addresses are exempt
    /// from the limits, as libtorrent allows: a LAN is rarely the link a user limits to
    /// spare. Off by default.
    pub rate_limit_exempt_local: bool,
    /// Started torrents with wanted pieces missing that run at once; the others wait in the
    /// queue ([`super::TorrentState::Queued`], [`super::Session::set_queue_position`]).
    /// `None` (the default): no cap.
    pub max_active_downloads: Option<usize>,
    /// Started torrents with every wanted piece that run at once, as
    /// [`Config::max_active_downloads`] for seeds. `None` (the default): no cap.
    pub max_active_seeds: Option<usize>,
    /// A running download that received no payload for this long holds no queue slot, so
    /// the next one starts beside it ([`DEFAULT_STALLED_AFTER`]).
    pub stalled_after: Duration,
}

/// Which transports a session's peer connections use ([`Config::transports`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Transports {
    /// TCP only: no uTP connection is opened or accepted.
    Tcp,
    /// uTP only: no TCP connection is opened, and the adapter listens on no TCP port.
    Utp,
    /// Both: uTP where the peer is known to speak it, TCP otherwise and as the fallback.
    #[default]
    Both,
}

impl Transports {
    /// Whether TCP connections are made and accepted.
    pub fn tcp(self) -> bool {
        self != Transports::Utp
    }

    /// Whether uTP connections are made and accepted.
    pub fn utp(self) -> bool {
        self != Transports::Tcp
    }
}

/// The transport carrying one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// A TCP connection, carried by the adapter.
    Tcp,
    /// A uTP connection over the session's UDP port, carried inside the engine.
    Utp,
}

impl Config {
    /// Defaults for everything but our identity and seed.
    pub fn new(peer_id: PeerId, listen_port: u16, seed: u64) -> Self {
        Config {
            peer_id,
            listen_port,
            seed,
            max_incoming: DEFAULT_MAX_INCOMING,
            max_outgoing: DEFAULT_MAX_OUTGOING,
            max_incoming_handshakes: DEFAULT_MAX_INCOMING_HANDSHAKES,
            max_incoming_handshakes_per_host: DEFAULT_MAX_INCOMING_HANDSHAKES_PER_HOST,
            max_connections_per_torrent: DEFAULT_MAX_CONNECTIONS_PER_TORRENT,
            max_connections_per_host: DEFAULT_MAX_CONNECTIONS_PER_HOST,
            max_half_open: DEFAULT_MAX_HALF_OPEN,
            upload_slots: DEFAULT_UPLOAD_SLOTS,
            initial_request_depth: DEFAULT_INITIAL_REQUEST_DEPTH,
            max_request_depth: DEFAULT_MAX_REQUEST_DEPTH,
            request_queue_seconds: DEFAULT_REQUEST_QUEUE_SECONDS,
            max_peer_requests: DEFAULT_MAX_PEER_REQUESTS,
            max_reads_in_flight: DEFAULT_MAX_READS_IN_FLIGHT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            inactivity_timeout: DEFAULT_INACTIVITY_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_inflight_bytes: DEFAULT_MAX_INFLIGHT_BYTES,
            ban_strikes: DEFAULT_BAN_STRIKES,
            numwant: DEFAULT_NUMWANT,
            client_name: concat!("bt ", env!("CARGO_PKG_VERSION")).to_string(),
            resume_save_interval: Some(DEFAULT_RESUME_SAVE_INTERVAL),
            pex: true,
            lsd: true,
            dht: false,
            dht_read_only: false,
            dht_id: None,
            encryption: Encryption::Disabled,
            transports: Transports::Both,
            rate_limits: RateLimits::NONE,
            rate_limit_overhead: false,
            rate_limit_exempt_local: false,
            max_active_downloads: None,
            max_active_seeds: None,
            stalled_after: DEFAULT_STALLED_AFTER,
        }
    }
}

/// Upload and download limits in bytes per second; 0 is none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RateLimits {
    /// Bytes per second of blocks sent; 0 is unlimited.
    pub upload: u64,
    /// Bytes per second of blocks requested; 0 is unlimited.
    pub download: u64,
}

impl RateLimits {
    /// No limit either way.
    pub const NONE: RateLimits = RateLimits {
        upload: 0,
        download: 0,
    };
}
