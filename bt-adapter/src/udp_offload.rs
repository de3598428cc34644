//! Segmentation offload for the session's UDP port (Linux): many datagrams to one peer leave
//! in one system call (`UDP_SEGMENT`, generic segmentation offload), and datagrams from one
//! peer arrive coalesced in one (`UDP_GRO`).
//!
//! uTP moves a transfer in datagrams of about 1,400 bytes; one `sendto` and one `recvfrom`
//! each was most of a uTP seeder's CPU. The kernel cuts a segmented send into datagrams of
//! the segment size (the last may be shorter), exactly the datagrams sent one by one would
//! have been, so the peer sees no difference. Where the kernel or the route cannot segment,
//! the first failed send turns offload off for the port and every datagram goes on its own,
//! as before.

use std::net::SocketAddr;
use std::ops::Range;

use bytes::Bytes;

/// Datagrams in one segmented send at most: the kernel's limit (`UDP_MAX_SEGMENTS`, 64 since
/// Linux 4.18; newer kernels allow more, older ones refuse more).
pub const MAX_SEGMENTS: usize = 64;

/// Bytes in one segmented send at most: what the 16-bit UDP and IP length fields leave of
/// 64 KiB after the headers (65,507 over IPv4), rounded down.
pub const MAX_SEGMENTED_BYTES: usize = 65_000;

/// The runs of `batch` that can leave in one segmented send each, in order: consecutive
/// datagrams to one address, all of one length but the last, which may be shorter, at most
/// `max_segments` and [`MAX_SEGMENTED_BYTES`] together. With `max_segments` 1, every datagram
/// is a run of its own.
pub fn runs(batch: &[(SocketAddr, Bytes)], max_segments: usize) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    while start < batch.len() {
        let end = run_end(batch, start, max_segments.max(1));
        runs.push(start..end);
        start = end;
    }
    runs
}

/// Where the run that starts at `start` ends (exclusive); `start < batch.len()`.
fn run_end(batch: &[(SocketAddr, Bytes)], start: usize, max_segments: usize) -> usize {
    let Some((to, first)) = batch.get(start) else {
        return start;
    };
    let segment = first.len();
    let mut end = start + 1;
    let mut bytes = segment;
    if segment == 0 {
        return end;
    }
    while end - start < max_segments {
        let Some((next_to, next)) = batch.get(end) else {
            break;
        };
        if next_to != to || next.len() > segment || bytes + next.len() > MAX_SEGMENTED_BYTES {
            break;
        }
        bytes += next.len();
        end += 1;
        if next.len() < segment {
            // A shorter datagram can only be a run's last.
            break;
        }
    }
    end
}

/// The system calls, on Linux.
#[cfg(target_os = "linux")]
pub mod sys {
    use std::io::{self, IoSlice, IoSliceMut};
    use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::{AsRawFd, BorrowedFd};

    use nix::sys::socket::{
        ControlMessage, ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, sendmsg,
        setsockopt, sockopt,
    };

    /// Asks the kernel to coalesce received datagrams (`UDP_GRO`, Linux 5.0); whether it
    /// took. Without it every datagram is received on its own.
    pub fn enable_gro(socket: BorrowedFd<'_>) -> bool {
        setsockopt(&socket, sockopt::UdpGroSegment, &true).is_ok()
    }

    /// Whether a segmented send failed because segmenting cannot work here: the kernel does
    /// not know `UDP_SEGMENT` (before 4.18), the device cannot checksum the segments (`EIO`),
    /// or a segment exceeds the route's MTU. Other errors (no route, an ICMP error of an
    /// earlier datagram) would have failed a plain send too.
    pub fn offload_refused(e: &io::Error) -> bool {
        use nix::errno::Errno;
        let refusals = [
            Errno::EIO,
            Errno::EINVAL,
            Errno::EMSGSIZE,
            Errno::ENOPROTOOPT,
            Errno::EOPNOTSUPP,
        ];
        e.raw_os_error()
            .is_some_and(|code| refusals.iter().any(|r| *r as i32 == code))
    }

    /// Sends `data` to `to` as datagrams of `segment` bytes (the last may be shorter), in one
    /// call.
    pub fn send_segments(
        socket: BorrowedFd<'_>,
        to: SocketAddr,
        data: &[u8],
        segment: u16,
    ) -> io::Result<()> {
        let iov = [IoSlice::new(data)];
        let cmsg = [ControlMessage::UdpGsoSegments(&segment)];
        let addr = SockaddrStorage::from(to);
        sendmsg(
            socket.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::empty(),
            Some(&addr),
        )
        .map(drop)
        .map_err(io::Error::from)
    }

    /// Receives into `buf`: the length, the sender, and the length of each datagram in it
    /// when the kernel coalesced several (each that long but the last, which may be shorter);
    /// `None` when it holds one.
    pub fn recv(
        socket: BorrowedFd<'_>,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr, Option<usize>)> {
        let mut cmsg = nix::cmsg_space!(i32);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .map_err(io::Error::from)?;
        let from = msg
            .address
            .as_ref()
            .and_then(socket_addr)
            .ok_or_else(|| io::Error::other("datagram without an IP sender"))?;
        let stride = msg.cmsgs().ok().and_then(|mut c| {
            c.find_map(|m| match m {
                ControlMessageOwned::UdpGroSegments(s) => usize::try_from(s).ok(),
                _ => None,
            })
        });
        Ok((msg.bytes, from, stride.filter(|&s| s > 0)))
    }

    fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
        if let Some(v4) = a.as_sockaddr_in() {
            return Some(SocketAddr::V4(SocketAddrV4::new(v4.ip(), v4.port())));
        }
        let v6 = a.as_sockaddr_in6()?;
        Some(SocketAddr::V6(SocketAddrV6::new(
            v6.ip(),
            v6.port(),
            v6.flowinfo(),
            v6.scope_id(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(items: &[(u16, usize)]) -> Vec<(SocketAddr, Bytes)> {
        items
            .iter()
            .map(|&(port, len)| {
                (
                    SocketAddr::from(([127, 0, 0, 1], port)),
                    Bytes::from(vec![0; len]),
                )
            })
            .collect()
    }

    #[test]
    fn runs_group_equal_datagrams_to_one_address_in_order() {
        let b = batch(&[
            (1, 1400),
            (1, 1400),
            (1, 900), // a shorter one ends the run
            (1, 1400),
            (2, 1400), // another address
            (2, 1400),
            (2, 1500), // longer than the run's segment
            (1, 20),
        ]);
        assert_eq!(runs(&b, MAX_SEGMENTS), [0..3, 3..4, 4..6, 6..7, 7..8]);
        // No offload: one each.
        assert_eq!(runs(&b, 1).len(), b.len());
    }

    #[test]
    fn runs_keep_to_the_kernels_limits() {
        let b = batch(&[(1, 1400); 200]);
        let r = runs(&b, MAX_SEGMENTS);
        // 46 datagrams of 1,400 bytes fit in 65,000.
        assert_eq!(r.first(), Some(&(0..46)));
        assert!(r.iter().all(|r| r.len() <= MAX_SEGMENTS));
        assert_eq!(r.iter().map(|r| r.len()).sum::<usize>(), 200);
        let small = batch(&[(1, 100); 200]);
        assert_eq!(runs(&small, MAX_SEGMENTS).first(), Some(&(0..MAX_SEGMENTS)));
        // Empty datagrams go alone (a segment size of 0 means none).
        assert_eq!(runs(&batch(&[(1, 0), (1, 0)]), MAX_SEGMENTS), [0..1, 1..2]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn only_errors_of_segmenting_turn_offload_off() {
        use nix::errno::Errno;
        let e = |errno: Errno| std::io::Error::from_raw_os_error(errno as i32);
        assert!(sys::offload_refused(&e(Errno::EIO)));
        assert!(sys::offload_refused(&e(Errno::EINVAL)));
        // An ICMP error of an earlier datagram, or no route: a plain send fails alike.
        assert!(!sys::offload_refused(&e(Errno::ECONNREFUSED)));
        assert!(!sys::offload_refused(&e(Errno::ENETUNREACH)));
    }

    /// Real sockets on loopback: one segmented send arrives as the datagrams it holds, to a
    /// plain receiver one by one, to a coalescing one in a single receive with their length.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_segmented_send_arrives_as_its_datagrams() {
        use std::net::UdpSocket;
        use std::os::fd::AsFd;

        let data: Vec<u8> = (0..10 * 1400 + 300).map(|i| (i % 251) as u8).collect();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let plain = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = plain.local_addr().unwrap();
        sys::send_segments(sender.as_fd(), to, &data, 1400).unwrap();
        let mut buf = vec![0; 65536];
        for (i, want) in data.chunks(1400).enumerate() {
            let (n, from) = plain.recv_from(&mut buf).unwrap();
            assert_eq!(from, sender.local_addr().unwrap());
            assert_eq!(&buf[..n], want, "datagram {i}");
        }

        let coalescing = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(sys::enable_gro(coalescing.as_fd()));
        let to = coalescing.local_addr().unwrap();
        sys::send_segments(sender.as_fd(), to, &data, 1400).unwrap();
        let (n, from, stride) = sys::recv(coalescing.as_fd(), &mut buf).unwrap();
        assert_eq!(from, sender.local_addr().unwrap());
        assert_eq!(&buf[..n], &data[..]);
        assert_eq!(stride, Some(1400));
    }
}
