//! The last bytes of a stream, bounded: what a shard's log and exec's error message keep of
//! output that may be of any size.

use std::collections::VecDeque;

/// The last bytes of a stream, at most `cap` of them: older bytes are dropped as new ones come.
#[derive(Debug, Clone)]
pub struct Tail {
    /// The bytes kept, oldest first.
    bytes: VecDeque<u8>,
    /// Most bytes kept.
    cap: usize,
    /// Bytes dropped from the front so far.
    dropped: u64,
}

impl Tail {
    /// An empty tail that keeps at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Tail { bytes: VecDeque::new(), cap, dropped: 0 }
    }

    /// Appends `chunk`, dropping the oldest bytes past the cap.
    pub fn push(&mut self, chunk: &[u8]) {
        let chunk = if chunk.len() > self.cap {
            self.dropped += (chunk.len() - self.cap) as u64;
            &chunk[chunk.len() - self.cap..]
        } else {
            chunk
        };
        let over = (self.bytes.len() + chunk.len()).saturating_sub(self.cap);
        self.bytes.drain(..over);
        self.dropped += over as u64;
        self.bytes.extend(chunk);
    }

    /// Whether bytes were dropped from the front.
    pub fn cut(&self) -> bool {
        self.dropped > 0
    }

    /// The bytes kept, as lossy UTF-8.
    pub fn text(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        String::from_utf8_lossy(&[a, b].concat()).into_owned()
    }

    /// The last `max` bytes kept, as lossy UTF-8, trimmed of surrounding whitespace.
    pub fn last(&self, max: usize) -> String {
        let skip = self.bytes.len().saturating_sub(max);
        let bytes: Vec<u8> = self.bytes.iter().skip(skip).copied().collect();
        String::from_utf8_lossy(&bytes).trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_keeps_the_last_bytes() {
        let mut tail = Tail::new(8);
        tail.push(b"hello_");
        assert_eq!(tail.last(usize::MAX), "hello_");
        assert!(!tail.cut());
        tail.push(b"world");
        assert_eq!(tail.last(usize::MAX), "lo_world");
        assert!(tail.cut());
        tail.push(b"0123456789abc");
        assert_eq!(tail.last(usize::MAX), "56789abc");
        assert_eq!(tail.last(3), "abc");
        assert_eq!(tail.text(), "56789abc");
    }
}
