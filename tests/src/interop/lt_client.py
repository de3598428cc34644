#!/usr/bin/python3
"""Drives libtorrent-rasterbar 2.0 (python3-libtorrent) for the interop tests.

One torrent, one role; or, with --role node, no torrent at all: a bare DHT node (BEP 5) that
the other clients bootstrap from. Prints one line per fact on stdout, which the Rust side
reads:
  LISTEN <port>                    listening on 127.0.0.1:<port> (TCP, and UDP for the DHT and uTP)
  TRACKER_REPLY <url> <peers>      an announce answered
  TRACKER_ERROR <url> <message>
  STATUS state=.. progress=.. down=.. up=.. peers=.. pieces=..   every STATUS_EVERY seconds
  PEER <ip:port> client=<name> down=<bytes> up=<bytes> seed=<0|1> source=<how, e.g. dht>
                                   at exit, per peer
  PEERLOG <in|out> <TYPE> <message>  (--peer-log) fast-extension messages on the wire
  HASHFAIL <piece>                 a downloaded piece failed its hash check
  BANNED <ip:port>
  METADATA <name>                  the metadata of a magnet link arrived
  DONE <seconds>                   every piece verified, seconds since the torrent was added
                                   (a seed: when it seeds, checked or in seed_mode)
  DHT_NODES <n>                    (--dht) nodes in the routing table, when it changes
  DHT_STATS nodes=.. torrents=.. peers=.. announce_in=.. get_peers_in=.. find_node_in=..
            invalid_announce=.. invalid_get_peers=.. invalid_find_node=.. dropped_in=..
                                   (--dht) the DHT counters, when they change
  DHT_ANNOUNCE <ip:port> <info-hash>   (--dht) a node announced a peer to us (we store it)
  DHT_REPLY <peers>                (--dht) a DHT search for the torrent returned peers
  PEER_SEEN <ip:port> source=<how>   (--dht) a peer, the first time it is in the peer list
  PEER_ENC <ip:port> rc4=<0|1> plaintext=<0|1>   (--encryption required) a peer in the peer
                                   list, first seen or its flags changed: whether libtorrent's
                                   side of the connection is RC4 or MSE-then-plaintext (both 0:
                                   no MSE handshake finished yet, or a connection to itself)
  PEER_ERROR <ip:port> <message>   a connection to a peer failed or was closed with an error
                                   that libtorrent blames on the peer
  PEER_DISCONNECT <ip:port> <message>   any other connection of a torrent closed
  PEER_CLOSED <ip:port> <error>    (--peer-log) any connection closed, also one refused before
                                   it named a torrent (its encryption policy refuses there)
  DHTLOG <message>                 (--dht-log) libtorrent's DHT log
  PEER_TRANSPORT <ip:port> utp=<0|1>   (--transport utp) a peer in the peer list, first seen
                                   or its flags changed: whether the connection is uTP
  UTP_STATS connected=.. payload_in=.. payload_out=.. tcp_peers=..   (--transport utp)
                                   libtorrent's uTP counters, when they change: uTP sockets
                                   connected now, uTP data packets received and sent so far,
                                   TCP peer connections now
  ERROR <message>
Exit codes: 0 done (or stopped by SIGTERM), 2 bad arguments, 3 torrent error,
4 could not listen, 5 timed out.
"""

import argparse
import re
import signal
import sys
import time

import libtorrent as lt

# How long the session may take to listen (and start its DHT): a fraction of a second.
START_WITHIN = 10.0

# How often progress is printed: often enough to follow a transfer of a few seconds.
STATUS_EVERY = 0.25

# How often the DHT and uTP counters are looked at (DHT_NODES, DHT_STATS, UTP_STATS are
# printed on a change).
DHT_STATS_EVERY = 0.5

# How often a torrent with --dht announces again (force_dht_announce) while it has no peer.
# libtorrent announces when the torrent starts, then every dht_announce_interval (15
# minutes); a search that ran before the other side announced would leave a test waiting
# that long.
DHT_ANNOUNCE_EVERY = 2.0

# The DHT counters of DHT_STATS, by the name printed.
DHT_METRICS = {
    "nodes": "dht.dht_nodes",
    "torrents": "dht.dht_torrents",
    "peers": "dht.dht_peers",
    "announce_in": "dht.dht_announce_peer_in",
    "get_peers_in": "dht.dht_get_peers_in",
    "find_node_in": "dht.dht_find_node_in",
    "invalid_announce": "dht.dht_invalid_announce",
    "invalid_get_peers": "dht.dht_invalid_get_peers",
    "invalid_find_node": "dht.dht_invalid_find_node",
    "dropped_in": "dht.dht_messages_in_dropped",
}

# The uTP counters of UTP_STATS, by the name printed.
UTP_METRICS = {
    "connected": "utp.num_utp_connected",
    "payload_in": "utp.utp_payload_pkts_in",
    "payload_out": "utp.utp_payload_pkts_out",
    "tcp_peers": "peer.num_tcp_peers",
}

# peer_info::utp_socket (peer_info.hpp: bit 17, between i2p_socket and ssl_socket); the
# Python binding of 2.0 does not name it.
UTP_SOCKET = 1 << 17

# libtorrent's ban of a DHT node that sends too much (dos_blocker.cpp, incoming): more than
# dht_block_ratelimit messages a second (default 5, averaged over 10 s: 50) from one IP and
# it ignores that IP, silently, for dht_block_timeout (5 minutes). Here every node is
# 127.0.0.1, so all the nodes of a test share one budget. The tests send a node about 15
# messages, but a ban would look like a DHT bug of ours, so the limit is out of reach.
DHT_BLOCK_RATELIMIT = 100000

# Peer-log message types that only exist with the fast extension (BEP 6), plus the
# handshake, so a test can see the extension was negotiated and used.
FAST_TYPES = {"HAVE_ALL", "HAVE_NONE", "ALLOWED_FAST", "REJECT_PIECE", "SUGGEST_PIECE"}
PEER_LOG = re.compile(r"(<==|==>) ([A-Z_]+)(.*)")
# "... [ip:port] *** CONNECTION_CLOSED [ op: 1 ERROR: (libtorrent:77) <message> ]"
PEER_CLOSED = re.compile(r"\[([0-9.]+:[0-9]+)\] \*\*\* CONNECTION_CLOSED \[ (.*) \]")


def out(line):
    print(line, flush=True)


def status_line(st):
    # Quirk: all_time_upload/download move only on libtorrent's one-second tick, so bytes
    # sent in the last second before exit would be missing; the total_payload_* counters
    # move with every block.
    out(
        "STATUS state=%s progress=%.4f down=%d up=%d peers=%d pieces=%d"
        % (st.state, st.progress, st.total_payload_download, st.total_payload_upload,
           st.num_peers, st.num_pieces)
    )


def dht_settings(args):
    """The DHT on, on loopback: libtorrent's defaults guard the public DHT against a host
    that runs many nodes, and on loopback every node is such a host."""
    return {
        "enable_dht": True,
        # Only the test's nodes, never the public routers (the default is
        # dht.libtorrent.org:25401); a node with none waits to be queried.
        "dht_bootstrap_nodes": ",".join(args.dht_bootstrap),
        # Every node is 127.0.0.1. With these on (the defaults), libtorrent keeps one node
        # per IP in its routing table and refuses a second one from the same /24
        # (routing_table.cpp, add_node_impl: "ignoring node (duplicate IP)"), and a search
        # keeps one node per /24 ("traversal DUPLICATE node", traversal_algorithm.cpp): with
        # them on, the bootstrap node keeps one of our two sessions' nodes, not both.
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        # BEP 42 ids are derived from the node's public IP; a loopback node's cannot be.
        # libtorrent 2.0 does not enforce them by default, and exempts local addresses
        # (node_id.cpp, verify_id: "no need to verify local IPs"), but says so here.
        "dht_enforce_node_id": False,
        # Likewise only a preference for BEP 42 ids when splitting a bucket; local
        # addresses count as verified anyway.
        "dht_prefer_verified_node_ids": False,
        # Drops messages from a few class-A networks (dht_tracker.cpp, incoming_packet);
        # 127/8 is not among them, so this is off only so nothing depends on that list.
        "dht_ignore_dark_internet": False,
        "dht_block_ratelimit": DHT_BLOCK_RATELIMIT,
        # Quirk: the DHT runs on every listen socket not marked local-network
        # (session_impl.cpp, start_dht), and one given by IP address, as listen_interfaces
        # is here, is not marked; one given by device name ("lo") would be, and would get
        # no DHT.
    }


def settings(args):
    s = {
        "listen_interfaces": "127.0.0.1:0",
        "outgoing_interfaces": "",
        # Only the tracker and the wire are under test.
        "enable_dht": False,
        # Never the public routers (the default), even if the DHT were started later.
        "dht_bootstrap_nodes": "",
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        # Every peer is 127.0.0.1; without this libtorrent keeps one connection per IP.
        "allow_multiple_connections_per_ip": True,
        # See encryption_settings: plain BitTorrent unless --encryption says otherwise.
        "announce_to_all_tiers": True,
        "announce_to_all_trackers": True,
        # A test swarm of a few peers on one machine: no slow start of unchoke slots.
        "unchoke_slots_limit": 8,
        "connections_limit": 50,
        "alert_mask": (
            lt.alert.category_t.error_notification
            | lt.alert.category_t.status_notification
            | lt.alert.category_t.tracker_notification
            | lt.alert.category_t.peer_notification
            | lt.alert.category_t.connect_notification
            | lt.alert.category_t.ip_block_notification
            | (lt.alert.category_t.peer_log_notification if args.peer_log else 0)
            | (lt.alert.category_t.dht_notification if args.dht else 0)
            | (lt.alert.category_t.dht_log_notification if args.dht_log else 0)
        ),
        "user_agent": "bt-interop/libtorrent " + lt.__version__,
    }
    if args.dht:
        s.update(dht_settings(args))
    s.update(encryption_settings(args.encryption))
    s.update(transport_settings(args.transport))
    return s


def transport_settings(mode):
    """The peer transports of --transport MODE."""
    utp = mode == "utp"
    # TCP only unless asked: the tests that look at the wire read TCP, and uTP attempts
    # would only add failures to their logs. uTP only: TCP neither dialled nor accepted, so
    # every byte of the torrent goes over uTP on the listen port's UDP socket.
    return {
        "enable_outgoing_utp": utp,
        "enable_incoming_utp": utp,
        "enable_outgoing_tcp": not utp,
        "enable_incoming_tcp": not utp,
    }


# libtorrent's settings_pack::enc_policy (settings_pack.hpp): pe_forced = 0, pe_enabled = 1,
# pe_disabled = 2; and enc_level: pe_plaintext = 1, pe_rc4 = 2, pe_both = 3.
PE_FORCED = 0
PE_DISABLED = 2
PE_RC4 = 2


def encryption_settings(mode):
    """The message stream encryption settings of --encryption MODE."""
    if mode == "required":
        # MSE on every connection both ways, RC4 only: libtorrent refuses a plaintext
        # handshake and never retries an outgoing connection in plaintext, and the payload
        # after the MSE handshake must be RC4 (pe_rc4 alone does that; prefer_rc4 says so
        # for the case it is not alone).
        return {
            "out_enc_policy": PE_FORCED,
            "in_enc_policy": PE_FORCED,
            "allowed_enc_level": PE_RC4,
            "prefer_rc4": True,
        }
    # Plain BitTorrent (the default of the tests that look at the wire): an encrypted
    # handshake would hide the wire from our peer.
    return {"out_enc_policy": PE_DISABLED, "in_enc_policy": PE_DISABLED}


def dht_stats(a):
    """The DHT_STATS fields of a session_stats_alert."""
    return metrics(a, DHT_METRICS)


def metrics(a, names):
    """The counters `names` of a session_stats_alert, as name=value fields."""
    values = a.values
    return " ".join("%s=%d" % (k, values.get(m, 0)) for k, m in names.items())


def main():
    p = argparse.ArgumentParser()
    source = p.add_mutually_exclusive_group()
    source.add_argument("--torrent")
    source.add_argument("--magnet", help="a magnet link to fetch the metadata of, then download")
    p.add_argument(
        "--metadata", action="store_true", help="load the ut_metadata plugin (BEP 9)"
    )
    p.add_argument("--pex", action="store_true", help="load ut_pex and exchange peers")
    p.add_argument("--save")
    p.add_argument(
        "--role",
        choices=["seed", "leech", "node"],
        required=True,
        help="node: no torrent, a DHT node only (implies --dht)",
    )
    p.add_argument("--peer-log", action="store_true")
    p.add_argument("--connect", action="append", default=[], help="ip:port to add directly")
    p.add_argument("--dht", action="store_true", help="run the DHT and use it for the torrent")
    p.add_argument(
        "--dht-bootstrap", action="append", default=[], help="ip:port of a DHT node to start from"
    )
    p.add_argument("--dht-log", action="store_true", help="print libtorrent's DHT log")
    p.add_argument("--exit-when-done", action="store_true")
    p.add_argument(
        "--encryption",
        choices=["disabled", "required"],
        default="disabled",
        help="message stream encryption: plaintext only, or MSE with RC4 on every connection",
    )
    p.add_argument(
        "--transport",
        choices=["tcp", "utp"],
        default="tcp",
        help="peer connections over TCP only, or over uTP only",
    )
    p.add_argument(
        "--checked",
        action="store_true",
        help="(seed) check every piece before seeding instead of seed_mode's check of each "
        "piece as it is first requested, so that a transfer's CPU is the transfer's alone",
    )
    p.add_argument("--timeout", type=float, default=300.0)
    try:
        args = p.parse_args()
        if args.role == "node":
            args.dht = True
            if args.torrent or args.magnet:
                p.error("--role node takes no torrent")
        elif not (args.torrent or args.magnet) or not args.save:
            p.error("--torrent or --magnet, and --save, are required")
    except SystemExit:
        sys.exit(2)

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))

    # flags=0: no default plugins, so no ut_pex (nor ut_metadata, smart_ban) unless asked.
    ses = lt.session(settings(args), 0)
    if args.metadata or args.magnet:
        # Serves the metadata to peers that fetch it, and fetches it for a magnet link.
        ses.add_extension("ut_metadata")
    if args.pex:
        ses.add_extension("ut_pex")

    started = time.monotonic()
    deadline = started + START_WITHIN
    if args.dht:
        # Quirk: a torrent asks for its first DHT announce when it starts, but only if the
        # DHT is running then (torrent.cpp, start_announcing: `if (... && m_ses.dht())
        # m_ses.prioritize_dht(...)`), and the DHT starts only once the bootstrap nodes'
        # names are resolved (session_impl.cpp, start_dht: "not starting DHT, outstanding
        # router lookups"). A torrent added with the session would wait for the round-robin
        # announce, every dht_announce_interval (15 minutes) / torrents.
        while not ses.is_dht_running():
            if time.monotonic() > deadline:
                out("ERROR the DHT did not start")
                sys.exit(4)
            time.sleep(0.01)
    h = None
    if args.role != "node":
        if args.magnet:
            atp = lt.parse_magnet_uri(args.magnet)
        else:
            atp = lt.add_torrent_params()
            atp.ti = lt.torrent_info(args.torrent)
        atp.save_path = args.save
        flags = lt.torrent_flags.disable_lsd
        if not args.dht:
            flags |= lt.torrent_flags.disable_dht
        if not args.pex:
            flags |= lt.torrent_flags.disable_pex
        if args.role == "seed" and not args.checked:
            # Quirk: in seed_mode libtorrent skips the full check but hashes each piece the
            # first time a peer requests it, and leaves seed mode (recheck) on a mismatch: a
            # libtorrent seed never serves a corrupted piece, so the corrupted seed of the
            # tests is ours.
            flags |= lt.torrent_flags.seed_mode
        atp.flags = flags
        h = ses.add_torrent(atp)

    while ses.listen_port() == 0:
        if time.monotonic() > deadline:
            out("ERROR no listen port")
            sys.exit(4)
        time.sleep(0.02)
    # The DHT runs on the UDP socket of the listen port.
    out("LISTEN %d" % ses.listen_port())

    for c in args.connect:
        ip, port = c.rsplit(":", 1)
        h.connect_peer((ip, int(port)))

    done = False
    last_status = 0.0
    last_dht_stats = 0.0
    last_dht_announce = time.monotonic()
    printed_nodes = None
    printed_stats = None
    seen_peers = set()
    enc_peers = {}
    utp_peers = {}
    printed_utp = None
    code = 0
    while not stopping:
        ses.wait_for_alert(50)
        for a in ses.pop_alerts():
            if isinstance(a, lt.tracker_reply_alert):
                out("TRACKER_REPLY %s %d" % (a.tracker_url(), a.num_peers))
            elif isinstance(a, lt.dht_reply_alert):
                out("DHT_REPLY %d" % a.num_peers)
            elif isinstance(a, (lt.tracker_error_alert, lt.tracker_warning_alert)):
                out("TRACKER_ERROR %s %s" % (a.tracker_url(), a.message()))
            elif isinstance(a, lt.dht_announce_alert):
                out("DHT_ANNOUNCE %s:%d %s" % (a.ip, a.port, a.info_hash))
            elif isinstance(a, lt.session_stats_alert) and not args.dht:
                stats = metrics(a, UTP_METRICS)
                if stats != printed_utp:
                    printed_utp = stats
                    out("UTP_STATS " + stats)
            elif isinstance(a, lt.session_stats_alert):
                stats = dht_stats(a)
                if stats != printed_stats:
                    printed_stats = stats
                    out("DHT_STATS " + stats)
                nodes = a.values.get("dht.dht_nodes", 0)
                if nodes != printed_nodes:
                    printed_nodes = nodes
                    out("DHT_NODES %d" % nodes)
            elif isinstance(a, lt.dht_log_alert):
                out("DHTLOG %s" % a.message())
            elif isinstance(a, lt.metadata_received_alert):
                out("METADATA %s" % a.handle.status().name)
            elif isinstance(a, lt.hash_failed_alert):
                out("HASHFAIL %d" % a.piece_index)
            elif isinstance(a, lt.peer_ban_alert):
                out("BANNED %s:%d" % (a.endpoint[0], a.endpoint[1]))
            elif isinstance(a, lt.peer_error_alert):
                # Why a connection failed: an MSE handshake refused shows up here.
                out("PEER_ERROR %s:%d %s" % (a.endpoint[0], a.endpoint[1], a.message()))
            elif isinstance(a, lt.peer_disconnected_alert):
                # libtorrent posts peer_error_alert only for errors it blames on the peer
                # (peer_connection.cpp, disconnect); the rest are disconnects.
                out("PEER_DISCONNECT %s:%d %s" % (a.endpoint[0], a.endpoint[1], a.message()))
            elif isinstance(a, lt.torrent_error_alert):
                out("ERROR %s" % a.message())
                code = 3
            elif args.peer_log and isinstance(a, lt.peer_log_alert):
                # Quirk: a connection closed before its handshake named a torrent (as an
                # incoming MSE handshake refused by in_enc_policy pe_disabled: "incoming
                # encrypted connections disabled") raises no disconnect alert, only this.
                c = PEER_CLOSED.search(a.message())
                if c:
                    out("PEER_CLOSED %s %s" % (c.group(1), c.group(2)))
                # The binding exposes neither the direction nor the event type, only the
                # formatted message: "... [ip:port] <== TYPE [ details ]" ("==>" outgoing).
                m = PEER_LOG.search(a.message())
                if m and (m.group(2) in FAST_TYPES or m.group(2) == "HANDSHAKE"):
                    d = "in" if m.group(1) == "<==" else "out"
                    out("PEERLOG %s %s %s" % (d, m.group(2), m.group(3).strip()))
        if code:
            break
        now = time.monotonic()
        stats_wanted = args.dht or args.transport == "utp"
        if stats_wanted and now - last_dht_stats >= DHT_STATS_EVERY:
            last_dht_stats = now
            ses.post_session_stats()
        if h is not None:
            st = h.status()
            if now - last_status >= STATUS_EVERY:
                last_status = now
                status_line(st)
            if args.dht:
                # Every peer once, with where libtorrent learnt of it, as soon as it is in
                # the list: the PEER lines at exit miss those gone by then (libtorrent
                # closes a connection between two seeds as soon as its download completes).
                for pi in h.get_peer_info():
                    ep = "%s:%d" % (pi.ip[0], pi.ip[1])
                    if ep not in seen_peers:
                        seen_peers.add(ep)
                        out("PEER_SEEN %s source=%s" % (ep, sources(pi.source)))
                if st.num_peers == 0 and now - last_dht_announce >= DHT_ANNOUNCE_EVERY:
                    last_dht_announce = now
                    h.force_dht_announce()
            if args.encryption != "disabled":
                # Every peer as soon as it is in the list and whenever its encryption
                # flags change: a seed and a leecher close their connection once both are
                # seeds, so the PEER lines at exit may miss it, and a peer is listed before
                # its MSE handshake is done.
                for pi in h.get_peer_info():
                    ep = "%s:%d" % (pi.ip[0], pi.ip[1])
                    enc = (1 if pi.flags & lt.peer_info.rc4_encrypted else 0,
                           1 if pi.flags & lt.peer_info.plaintext_encrypted else 0)
                    if enc_peers.get(ep) != enc:
                        enc_peers[ep] = enc
                        out("PEER_ENC %s rc4=%d plaintext=%d" % ((ep,) + enc))
            if args.transport == "utp":
                # As PEER_ENC: every peer as soon as it is listed, before a seed and a
                # leecher part.
                for pi in h.get_peer_info():
                    ep = "%s:%d" % (pi.ip[0], pi.ip[1])
                    utp = 1 if int(pi.flags) & UTP_SOCKET else 0
                    if utp_peers.get(ep) != utp:
                        utp_peers[ep] = utp
                        out("PEER_TRANSPORT %s utp=%d" % (ep, utp))
            if not done and st.is_seeding and st.state == lt.torrent_status.seeding:
                done = True
                out("DONE %.3f" % (now - started))
                if args.exit_when_done:
                    break
        if now - started > args.timeout:
            out("ERROR timed out after %.0f s" % args.timeout)
            code = 5
            break

    if h is not None:
        status_line(h.status())
        for pi in h.get_peer_info():
            out(
                "PEER %s:%d client=%s down=%d up=%d seed=%d source=%s"
                % (pi.ip[0], pi.ip[1], client_name(pi), pi.total_download,
                   pi.total_upload, 1 if pi.flags & lt.peer_info.seed else 0, sources(pi.source))
            )
    sys.exit(code)


def client_name(pi):
    """The peer's client name, spaces made underscores; "?" when unknown."""
    name = pi.client
    # Quirk: the binding gives bytes, not str, for a name that is not valid UTF-8 (as for a
    # peer still handshaking, such as a uTP connection to itself, listed at exit).
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return name.replace(" ", "_") or "?"


def sources(source):
    """Where libtorrent learnt of a peer, as a comma-separated list of names."""
    names = [
        (lt.peer_info.tracker, "tracker"),
        (lt.peer_info.dht, "dht"),
        (lt.peer_info.pex, "pex"),
        (lt.peer_info.lsd, "lsd"),
        (lt.peer_info.resume_data, "resume"),
    ]
    got = [n for bit, n in names if source & bit]
    # No bit set: the peer connected to us, or was added directly (--connect).
    return ",".join(got) or "none"


if __name__ == "__main__":
    main()
