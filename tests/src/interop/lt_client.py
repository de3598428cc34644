#!/usr/bin/python3
"""Drives libtorrent-rasterbar 2.0 (python3-libtorrent) for the interop tests.

One torrent, one role. Prints one line per fact on stdout, which the Rust side reads:
  LISTEN <port>                    listening on 127.0.0.1:<port>
  TRACKER_REPLY <url> <peers>      an announce answered
  TRACKER_ERROR <url> <message>
  STATUS state=.. progress=.. down=.. up=.. peers=.. pieces=..   every STATUS_EVERY seconds
  PEER <ip:port> client=<name> down=<bytes> up=<bytes> seed=<0|1>   at exit, per peer
  PEERLOG <in|out> <TYPE> <message>  (--peer-log) fast-extension messages on the wire
  HASHFAIL <piece>                 a downloaded piece failed its hash check
  BANNED <ip:port>
  METADATA <name>                  the metadata of a magnet link arrived
  DONE <seconds>                   every piece verified, seconds since the torrent was added
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

# How often progress is printed: often enough to follow a transfer of a few seconds.
STATUS_EVERY = 0.25

# Peer-log message types that only exist with the fast extension (BEP 6), plus the
# handshake, so a test can see the extension was negotiated and used.
FAST_TYPES = {"HAVE_ALL", "HAVE_NONE", "ALLOWED_FAST", "REJECT_PIECE", "SUGGEST_PIECE"}
PEER_LOG = re.compile(r"(<==|==>) ([A-Z_]+)(.*)")


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


def settings(args):
    s = {
        "listen_interfaces": "127.0.0.1:0",
        "outgoing_interfaces": "",
        # Only the tracker and the wire are under test.
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        # Every peer is 127.0.0.1; without this libtorrent keeps one connection per IP.
        "allow_multiple_connections_per_ip": True,
        # Our side speaks TCP only; uTP would only add failed attempts to the log.
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        # Plain BitTorrent: an encrypted handshake would hide the wire from our peer.
        "out_enc_policy": 2,  # pe_disabled
        "in_enc_policy": 2,
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
            | lt.alert.category_t.ip_block_notification
            | (lt.alert.category_t.peer_log_notification if args.peer_log else 0)
        ),
        "user_agent": "bt-interop/libtorrent " + lt.__version__,
    }
    return s


def main():
    p = argparse.ArgumentParser()
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--torrent")
    source.add_argument("--magnet", help="a magnet link to fetch the metadata of, then download")
    p.add_argument(
        "--metadata", action="store_true", help="load the ut_metadata plugin (BEP 9)"
    )
    p.add_argument("--pex", action="store_true", help="load ut_pex and exchange peers")
    p.add_argument("--save", required=True)
    p.add_argument("--role", choices=["seed", "leech"], required=True)
    p.add_argument("--peer-log", action="store_true")
    p.add_argument("--connect", action="append", default=[], help="ip:port to add directly")
    p.add_argument("--exit-when-done", action="store_true")
    p.add_argument("--timeout", type=float, default=300.0)
    try:
        args = p.parse_args()
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

    if args.magnet:
        atp = lt.parse_magnet_uri(args.magnet)
    else:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(args.torrent)
    atp.save_path = args.save
    flags = lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
    if not args.pex:
        flags |= lt.torrent_flags.disable_pex
    if args.role == "seed":
        # Quirk: in seed_mode libtorrent skips the full check but hashes each piece the first
        # time a peer requests it, and leaves seed mode (recheck) on a mismatch: a libtorrent
        # seed never serves a corrupted piece, so the corrupted seed of the tests is ours.
        flags |= lt.torrent_flags.seed_mode
    atp.flags = flags
    started = time.monotonic()
    h = ses.add_torrent(atp)

    deadline = started + 10.0
    while ses.listen_port() == 0:
        if time.monotonic() > deadline:
            out("ERROR no listen port")
            sys.exit(4)
        time.sleep(0.02)
    out("LISTEN %d" % ses.listen_port())

    for c in args.connect:
        ip, port = c.rsplit(":", 1)
        h.connect_peer((ip, int(port)))

    done = False
    last_status = 0.0
    code = 0
    while not stopping:
        ses.wait_for_alert(50)
        for a in ses.pop_alerts():
            if isinstance(a, lt.tracker_reply_alert):
                out("TRACKER_REPLY %s %d" % (a.tracker_url(), a.num_peers))
            elif isinstance(a, (lt.tracker_error_alert, lt.tracker_warning_alert)):
                out("TRACKER_ERROR %s %s" % (a.tracker_url(), a.message()))
            elif isinstance(a, lt.metadata_received_alert):
                out("METADATA %s" % a.handle.status().name)
            elif isinstance(a, lt.hash_failed_alert):
                out("HASHFAIL %d" % a.piece_index)
            elif isinstance(a, lt.peer_ban_alert):
                out("BANNED %s:%d" % (a.endpoint[0], a.endpoint[1]))
            elif isinstance(a, lt.torrent_error_alert):
                out("ERROR %s" % a.message())
                code = 3
            elif args.peer_log and isinstance(a, lt.peer_log_alert):
                # The binding exposes neither the direction nor the event type, only the
                # formatted message: "... [ip:port] <== TYPE [ details ]" ("==>" outgoing).
                m = PEER_LOG.search(a.message())
                if m and (m.group(2) in FAST_TYPES or m.group(2) == "HANDSHAKE"):
                    d = "in" if m.group(1) == "<==" else "out"
                    out("PEERLOG %s %s %s" % (d, m.group(2), m.group(3).strip()))
        if code:
            break
        now = time.monotonic()
        st = h.status()
        if now - last_status >= STATUS_EVERY:
            last_status = now
            status_line(st)
        if not done and st.is_seeding and st.state == lt.torrent_status.seeding:
            done = True
            out("DONE %.3f" % (now - started))
            if args.exit_when_done:
                break
        if now - started > args.timeout:
            out("ERROR timed out after %.0f s" % args.timeout)
            code = 5
            break

    status_line(h.status())
    for pi in h.get_peer_info():
        out(
            "PEER %s:%d client=%s down=%d up=%d seed=%d"
            % (pi.ip[0], pi.ip[1], pi.client.replace(" ", "_") or "?", pi.total_download,
               pi.total_upload, 1 if pi.flags & lt.peer_info.seed else 0)
        )
    sys.exit(code)


if __name__ == "__main__":
    main()
