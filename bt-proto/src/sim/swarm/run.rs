//! The run loop: virtual time jumps to the next thing due (a network event, a delayed disk
//! or tracker answer, a session's timer) and everything due then is processed.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::held::End;
use super::{ConnEnd, NodeId, Swarm};
use crate::ConnId;
use crate::engine::Input;
use crate::sim::net::{Arrival, Arrived, NetEventKind, Side};

/// Work the runner finishes later.
#[derive(Debug)]
pub(super) enum Delayed {
    /// A disk or tracker answer, after its latency.
    Input(NodeId, Input),
    /// A connection's socket takes more of its queued bytes.
    Pump(NodeId, ConnId),
}

/// The swarm ran out of things to do, or out of time, before the goal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("simulation stalled or ran out of time at {at:?} of virtual time")]
pub struct Stalled {
    /// Virtual time when it gave up.
    pub at: Duration,
}

impl Swarm {
    pub(super) fn schedule(&mut self, at: Instant, item: Delayed) {
        self.seq += 1;
        let seq = self.seq;
        self.delayed.push(at, seq, item);
    }

    /// Records `node`'s session deadline after it changed state, for [`Swarm::next_time`].
    pub(super) fn note_timer(&mut self, node: NodeId) {
        let Some(n) = self.nodes.get_mut(node.0) else {
            return;
        };
        let t = n.session.poll_timeout();
        if t != n.timer {
            n.timer = t;
            if let Some(t) = t {
                self.timers.push(Reverse((t, node.0)));
            }
        }
    }

    /// The earliest live session deadline; stale entries met on the way are dropped.
    fn next_timer(&mut self) -> Option<Instant> {
        while let Some(Reverse((t, idx))) = self.timers.peek().copied() {
            if self.timer_is_live(t, idx) {
                return Some(t);
            }
            self.timers.pop();
        }
        None
    }

    fn timer_is_live(&self, t: Instant, idx: usize) -> bool {
        self.nodes
            .get(idx)
            .is_some_and(|n| n.alive && !n.raw && n.timer == Some(t))
    }

    /// Runs until `done` holds (checked after every step) or `limit` of virtual time passes.
    /// Returns the virtual time taken, or an error naming the limit.
    pub fn run_until(
        &mut self,
        mut done: impl FnMut(&Swarm) -> bool,
        limit: Duration,
    ) -> Result<Duration, Stalled> {
        let start = self.clock.now();
        let deadline = start + limit;
        loop {
            if done(self) {
                self.release_all();
                return Ok(self.clock.now().saturating_duration_since(start));
            }
            let next = self.next_time();
            match next {
                Some(t) if t <= deadline => {
                    self.clock.advance_to(t);
                    self.step();
                }
                _ => {
                    self.catch_up(deadline);
                    self.release_all();
                    return Err(Stalled {
                        at: self.clock.elapsed(),
                    });
                }
            }
        }
    }

    /// Runs for `span` of virtual time.
    pub fn run_for(&mut self, span: Duration) {
        let deadline = self.clock.now() + span;
        while let Some(t) = self.next_time().filter(|t| *t <= deadline) {
            self.clock.advance_to(t);
            self.step();
        }
        self.catch_up(deadline);
        self.release_all();
        self.clock.advance_to(deadline);
    }

    /// Moves the clock to the last arrival by `deadline` that came without an event, if
    /// later than the last step: where a runner woken by every segment would stand, so that
    /// what the held bytes' hand-over makes the sessions do happens at the same time.
    fn catch_up(&mut self, deadline: Instant) {
        if let Some(t) = self.net.last_quiet_arrival(deadline) {
            self.clock.advance_to(t.max(self.clock.now()));
        }
    }

    fn next_time(&mut self) -> Option<Instant> {
        let net = self.net.next_event_time();
        let delayed = self.delayed.peek_at();
        let timer = self.next_timer();
        net.into_iter().chain(delayed).chain(timer).min()
    }

    /// Processes everything due at the current instant.
    fn step(&mut self) {
        self.steps += 1;
        let now = self.clock.now();
        while let Some(ev) = self.net.poll_arrival(now) {
            // A connection's end is known once its session has it; a new incoming one is
            // found by its host's address.
            let end = self.ends.get(ev.conn, ev.side).map(|e| (e.node, e.conn));
            // Bytes for a known end go straight to it, without a look at the node (a node
            // killed or restarted forgot its ends, and a raw node has none): most are held.
            let kind = match ev.what {
                Arrived::Bytes(len) if end.is_some() => {
                    self.receive(ev.conn, ev.side, (now, ev.seq), len);
                    continue;
                }
                Arrived::Bytes(len) => {
                    NetEventKind::Data(self.net.take_received_joined(ev.conn, ev.side, len))
                }
                Arrived::Connected => NetEventKind::Connected,
                Arrived::Refused => NetEventKind::Refused,
                Arrived::Closed(k) => NetEventKind::Closed(k),
            };
            let closed = matches!(kind, NetEventKind::Closed(_));
            self.event(ev, end, kind, now);
            if closed {
                // Whatever the end held was handed over; nothing more comes to it.
                self.net.forget_received(ev.conn, ev.side);
            }
        }
        while self.delayed.peek_at().is_some_and(|at| at <= now) {
            match self.delayed.pop() {
                Some(Delayed::Input(node, input)) => {
                    if let Some(n) = self.nodes.get_mut(node.0)
                        && n.alive
                    {
                        n.session.handle(now, input);
                        self.drain(node);
                    }
                }
                Some(Delayed::Pump(node, conn)) => {
                    self.pump(node, conn, now);
                    self.drain(node);
                }
                None => {}
            }
        }
        self.fire_timers(now);
    }

    /// Carries out a network event other than bytes for a known end: a connection
    /// accepted, established, refused or closed, or bytes for a raw node.
    fn event(
        &mut self,
        ev: Arrival,
        end: Option<(usize, ConnId)>,
        kind: NetEventKind,
        now: Instant,
    ) {
        let Some(idx) = end
            .map(|(i, _)| i)
            .or_else(|| self.by_addr.get(&ev.host).copied())
        else {
            return;
        };
        let Some(n) = self.nodes.get_mut(idx) else {
            return;
        };
        if !n.alive {
            return;
        }
        if n.raw {
            n.raw_inbox.entry(ev.conn).or_default().record(kind);
            return;
        }
        let conn = end.map(|(_, c)| c);
        match (kind, conn) {
            (NetEventKind::Connected, None) if ev.side == Side::Acceptor => {
                let c = n.session.accept(now, ev.peer);
                n.conns.insert(c, ConnEnd::new(ev.conn, ev.side));
                self.ends.set(ev.conn, ev.side, Some(End::new(idx, c)));
            }
            (NetEventKind::Connected, Some(c)) if ev.side == Side::Initiator => {
                n.session.handle(now, Input::Connected { conn: c });
            }
            (NetEventKind::Refused | NetEventKind::Closed(_), Some(c)) => {
                self.release_end(ev.conn, ev.side);
                if let Some(n) = self.nodes.get_mut(idx) {
                    n.conns.remove(&c);
                    n.session.handle(now, Input::Closed { conn: c });
                }
                self.ends.set(ev.conn, ev.side, None);
            }
            _ => {}
        }
        self.drain(NodeId(idx));
    }

    /// Hands every session whose deadline has come its timeout, in node order. A node's
    /// timeout changes no other node's session, so taking the due nodes first is the same
    /// as asking each node in turn.
    fn fire_timers(&mut self, now: Instant) {
        let mut due = BTreeSet::new();
        while let Some(Reverse((t, idx))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            if self.timer_is_live(t, idx)
                && let Some(n) = self.nodes.get_mut(idx)
            {
                // Forgotten, so that the deadline after the timeout is noted even if equal.
                n.timer = None;
                due.insert(idx);
            }
        }
        for idx in due {
            self.release_node(NodeId(idx));
            if let Some(n) = self.nodes.get_mut(idx) {
                n.session.handle_timeout(now);
            }
            self.drain(NodeId(idx));
        }
    }
}
