//! Sequence and ack numbers: 16 bits that wrap around.
//!
//! uTP numbers every packet that needs an ack (SYN, DATA, FIN) with a 16-bit sequence number
//! that wraps from 65535 to 0. Two numbers compare by the shorter way round the circle: `a`
//! is before `b` when going forward from `a` reaches `b` in fewer than 32768 steps. That holds
//! as long as fewer than 32768 packets are ever outstanding, which the send and receive
//! buffers guarantee with far smaller limits.

/// `a + n`, wrapping.
pub fn add(a: u16, n: u16) -> u16 {
    a.wrapping_add(n)
}

/// How many steps forward from `from` reach `to` (0 when equal), wrapping.
pub fn distance(from: u16, to: u16) -> u16 {
    to.wrapping_sub(from)
}

/// Whether `a` comes strictly before `b` on the 16-bit circle.
pub fn before(a: u16, b: u16) -> bool {
    let d = distance(a, b);
    d != 0 && d < 0x8000
}

/// Whether `a` is the same as `b` or comes after it.
pub fn at_or_after(a: u16, b: u16) -> bool {
    !before(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_around() {
        assert_eq!(add(65535, 1), 0);
        assert_eq!(add(65530, 10), 4);
        assert_eq!(distance(65530, 4), 10);
        assert_eq!(distance(4, 4), 0);
        assert!(before(65535, 0));
        assert!(before(65530, 4));
        assert!(!before(4, 65530));
        assert!(!before(7, 7));
        assert!(at_or_after(7, 7));
        assert!(at_or_after(0, 65535));
        // Half the circle away is "after" from either side; never reached in practice.
        assert!(before(0, 0x7fff));
        assert!(!before(0, 0x8000));
    }
}
