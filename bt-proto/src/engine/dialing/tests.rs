//! Tests of the addresses a torrent dials (`Candidates`) and of when it dials them.

use super::*;

/// What [`Candidates::take_due`] gave before its index and parking: every address with no
/// connection looked at in order.
fn take_due_by_walking(
    c: &Candidates,
    now: Instant,
    budget: usize,
    mut verdict: impl FnMut(SocketAddr) -> Verdict,
) -> (Vec<SocketAddr>, bool) {
    let mut due: Vec<SocketAddr> = c
        .by_addr
        .iter()
        .filter(|(a, c)| !c.connected && c.next_attempt <= now && verdict(**a) == Verdict::Dial)
        .map(|(a, _)| *a)
        .take(budget + 1)
        .collect();
    let more = due.len() > budget;
    due.truncate(budget);
    (due, more)
}

/// Whatever happens to the addresses, the index of those waiting is what walking them
/// all would find, and dialing takes the same addresses as it did by walking (with no
/// index, and looking again at addresses whose host was full until it frees up).
#[test]
fn the_waiting_index_follows_every_change() {
    let t0 = Instant::now();
    let mut rng = Rng::seed_from_u64(7);
    let mut c = Candidates::default();
    let host = |n: usize| {
        SocketAddr::from((
            [10, 0, (n % 7) as u8, (n % 13) as u8],
            6881 + (n % 5) as u16,
        ))
    };
    let how = ended(Duration::from_secs(3));
    // Hosts with their one connection, as dialing counts them.
    let mut full: BTreeSet<IpAddr> = BTreeSet::new();
    for step in 0..20_000usize {
        let now = t0 + Duration::from_millis(step as u64 * 250);
        let a = host(rng.index(500));
        match rng.index(12) {
            0 | 1 => {
                c.learn(a, now, &mut rng);
            }
            2 => c.dial_failed(a, now),
            3 => c.busy(a, now),
            4 => c.closed(a, now, Some(how)),
            5 => c.retry_now(a, now),
            6 => c.refuses_mse(a, now, rng.index(2) == 0),
            7 => c.refuses_utp(a, now, rng.index(2) == 0),
            9 if rng.index(2) == 0 => {
                full.remove(&a.ip());
                c.host_freed(a.ip());
            }
            9 => {
                full.insert(a.ip());
            }
            8 => match rng.index(20) {
                0 => c.retry_all(now),
                1 => c.retry_busy_within(now, Duration::from_secs(30)),
                2 => c.forget_host(a.ip()),
                _ => c.forget(a),
            },
            _ => {
                let budget = rng.index(4);
                let odd = rng.index(2) == 0;
                // As dialing does: one connection per host, counting the hosts looked at
                // earlier in the same call.
                let judge = |full: &BTreeSet<IpAddr>| {
                    let full = full.clone();
                    let mut seen = BTreeSet::new();
                    move |x: SocketAddr| {
                        if !(odd || x.port().is_multiple_of(2)) {
                            return Verdict::Skip;
                        }
                        if full.contains(&x.ip()) || !seen.insert(x.ip()) {
                            Verdict::HostFull
                        } else {
                            Verdict::Dial
                        }
                    }
                };
                let want = take_due_by_walking(&c, now, budget, judge(&full));
                let mut verdict = judge(&full);
                let got = c.take_due(now, budget, |x, _| verdict(x));
                assert_eq!(got, want, "step {step}");
                full.extend(got.0.iter().map(SocketAddr::ip));
            }
        }
        let walked: BTreeSet<(Instant, SocketAddr)> = c
            .by_addr
            .iter()
            .filter(|(_, x)| !x.connected && !x.parked)
            .map(|(a, x)| (x.next_attempt, *a))
            .collect();
        assert_eq!(c.waiting, walked, "step {step}");
        let next = walked.iter().map(|(t, _)| *t).filter(|t| *t > now).min();
        assert_eq!(c.next_attempt_after(now), next, "step {step}");
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

fn ended(lasted: Duration) -> EndedConnection {
    EndedConnection {
        lasted,
        delivered: false,
        misbehaved: false,
        useless: false,
        torrent_done: false,
        peer_seed: false,
    }
}

#[test]
fn due_addresses_are_taken_once_within_the_budget() {
    let t0 = Instant::now();
    let mut c = Candidates::default();
    let mut rng = Rng::seed_from_u64(1);
    for p in 1..=3 {
        assert!(c.learn(addr(p), t0, &mut rng));
    }
    assert!(!c.learn(addr(1), t0, &mut rng), "known already");
    assert_eq!(
        c.take_due(t0, 2, |_, _| Verdict::Dial),
        (vec![addr(1), addr(2)], true)
    );
    assert_eq!(
        c.take_due(t0, 5, |_, _| Verdict::Dial),
        (vec![addr(3)], false)
    );
    assert_eq!(c.take_due(t0, 5, |_, _| Verdict::Dial), (vec![], false));
    assert_eq!(c.next_attempt(), None, "all connected");
}

#[test]
fn failed_dials_back_off_and_are_forgotten() {
    let t0 = Instant::now();
    let mut c = Candidates::default();
    let mut rng = Rng::seed_from_u64(1);
    c.learn(addr(1), t0, &mut rng);
    c.take_due(t0, 1, |_, _| Verdict::Dial);
    c.dial_failed(addr(1), t0);
    assert_eq!(c.next_attempt(), Some(t0 + RECONNECT_BASE * 2));
    for _ in 1..MAX_CONNECT_FAILURES {
        c.dial_failed(addr(1), t0);
    }
    assert_eq!(c.iter().count(), 0);
}

#[test]
fn a_full_peer_is_retried_within_a_minute_and_kept_longer_than_a_dead_one() {
    let t0 = Instant::now();
    let mut c = Candidates::default();
    let mut rng = Rng::seed_from_u64(1);
    c.learn(addr(1), t0, &mut rng);
    for n in 1..MAX_BUSY_REFUSALS {
        c.take_due(t0, 1, |_, _| Verdict::Dial);
        c.busy(addr(1), t0);
        let wait = c.next_attempt().map(|at| at - t0);
        let want = (RECONNECT_BASE * (1 << n.min(6))).min(BUSY_RETRY_MAX);
        assert_eq!(wait, Some(want), "refusal {n}");
    }
    assert_eq!(
        c.iter().count(),
        1,
        "still known past {MAX_CONNECT_FAILURES} refusals"
    );
    c.busy(addr(1), t0);
    assert_eq!(c.iter().count(), 0, "forgotten after {MAX_BUSY_REFUSALS}");
    // A handshake forgives the refusals before it.
    c.learn(addr(2), t0, &mut rng);
    c.busy(addr(2), t0);
    c.busy(addr(2), t0);
    c.handshook(addr(2));
    c.busy(addr(2), t0);
    let wait = c
        .iter()
        .find(|(a, _)| **a == addr(2))
        .map(|(_, k)| k.next_attempt - t0);
    assert_eq!(wait, Some(RECONNECT_BASE * 2));
}

/// A seed leaves the seeds it met out of its dials, without looking at them each time,
/// and calls them back when it wants pieces again.
#[test]
fn a_seed_parks_the_seeds_it_met_until_it_wants_pieces() {
    let t0 = Instant::now();
    let mut c = Candidates::default();
    let mut rng = Rng::seed_from_u64(1);
    c.learn(addr(1), t0, &mut rng);
    c.learn(addr(2), t0, &mut rng);
    c.take_due(t0, 2, |_, _| Verdict::Dial);
    let seed = EndedConnection {
        torrent_done: true,
        peer_seed: true,
        ..ended(Duration::from_secs(1))
    };
    c.closed(addr(1), t0, Some(seed));
    c.closed(addr(2), t0, Some(ended(Duration::from_secs(1))));
    let later = t0 + Duration::from_secs(3600);
    let judge = |_: SocketAddr, c: &Candidate| if c.seed { Verdict::Seed } else { Verdict::Dial };
    assert_eq!(c.take_due(later, 0, judge), (vec![], true));
    assert_eq!(c.take_due(later, 2, judge), (vec![addr(2)], false));
    let mut looked_at = Vec::new();
    let (due, _) = c.take_due(later, 2, |a, _| {
        looked_at.push(a);
        Verdict::Dial
    });
    assert_eq!((due, looked_at), (vec![], vec![]), "the seed stays parked");
    c.retry_all(later);
    assert_eq!(c.take_due(later, 2, |_, _| Verdict::Dial).0, vec![addr(1)]);
}

#[test]
fn a_stuck_torrent_calls_back_the_full_peers_only() {
    let t0 = Instant::now();
    let mut c = Candidates::default();
    let mut rng = Rng::seed_from_u64(1);
    for p in 1..=3 {
        c.learn(addr(p), t0, &mut rng);
    }
    c.take_due(t0, 3, |_, _| Verdict::Dial);
    c.busy(addr(1), t0); // full: back within a minute
    // Dropped us after the handshake: its wait is short too, but it chose to.
    c.closed(addr(2), t0, Some(ended(Duration::from_secs(1))));
    c.retry_busy_within(t0, BUSY_RETRY_MAX);
    let (due, _) = c.take_due(t0, 3, |_, _| Verdict::Dial);
    assert_eq!(due, vec![addr(1)], "addr(3) is connected, addr(2) waits on");
}

#[test]
fn closes_double_the_wait_until_a_connection_proves_itself() {
    let t0 = Instant::now();
    let mut c = Candidates::default();
    let mut rng = Rng::seed_from_u64(1);
    c.learn(addr(1), t0, &mut rng);
    c.take_due(t0, 1, |_, _| Verdict::Dial);
    c.closed(addr(1), t0, Some(ended(Duration::ZERO)));
    assert_eq!(c.next_attempt(), Some(t0 + RECONNECT_AFTER_CLOSE));
    c.closed(addr(1), t0, Some(ended(Duration::ZERO)));
    assert_eq!(c.next_attempt(), Some(t0 + RECONNECT_AFTER_CLOSE * 2));
    c.closed(addr(1), t0, Some(ended(CONNECTION_PROVEN_AFTER)));
    assert_eq!(c.next_attempt(), Some(t0 + RECONNECT_AFTER_CLOSE));
    c.retry_now(addr(1), t0);
    assert_eq!(c.next_attempt(), Some(t0));
}

#[test]
fn a_stop_says_nothing_about_the_peer() {
    let t0 = Instant::now();
    let mut c = Candidates::default();
    let mut rng = Rng::seed_from_u64(1);
    c.learn(addr(1), t0, &mut rng);
    c.take_due(t0, 1, |_, _| Verdict::Dial);
    c.closed(addr(1), t0, None);
    assert_eq!(c.next_attempt(), Some(t0), "due at once");
}

#[test]
fn the_list_is_bounded_and_banned_hosts_go() {
    let t0 = Instant::now();
    let mut c = Candidates::default();
    let mut rng = Rng::seed_from_u64(1);
    for p in 0..MAX_KNOWN_PEERS as u16 {
        assert!(c.learn(addr(p), t0, &mut rng));
    }
    // Full: a new address takes the place of one that failed most.
    c.take_due(t0, 1, |_, _| Verdict::Dial);
    c.dial_failed(addr(0), t0);
    let newcomer = SocketAddr::from(([10, 0, 0, 2], 1));
    assert!(c.learn(newcomer, t0, &mut rng));
    assert_eq!(c.iter().count(), MAX_KNOWN_PEERS);
    assert!(c.iter().all(|(a, _)| *a != addr(0)), "the failed one went");
    c.forget_host(addr(1).ip());
    assert_eq!(c.iter().count(), 1);
}

#[test]
fn a_full_list_of_connected_addresses_takes_no_more() {
    let t0 = Instant::now();
    let mut c = Candidates::default();
    let mut rng = Rng::seed_from_u64(1);
    for p in 0..MAX_KNOWN_PEERS as u16 {
        c.learn(addr(p), t0, &mut rng);
    }
    c.take_due(t0, MAX_KNOWN_PEERS, |_, _| Verdict::Dial);
    assert!(!c.learn(SocketAddr::from(([10, 0, 0, 2], 1)), t0, &mut rng));
}

#[test]
fn addresses_no_peer_can_listen_at_are_not_dialable() {
    for bad in [
        "10.0.0.1:0",
        "0.0.0.0:6881",
        "[::]:6881",
        "224.0.0.1:6881",
        "[ff02::1]:6881",
        "255.255.255.255:6881",
    ] {
        assert!(!dialable(bad.parse().unwrap()), "{bad}");
    }
    for good in ["10.0.0.1:6881", "127.0.0.1:1", "[2001:db8::1]:6881"] {
        assert!(dialable(good.parse().unwrap()), "{good}");
    }
}
