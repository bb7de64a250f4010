//! Splitting a byte stream into frames: a big-endian `i32` size, then that many bytes.
//!
//! An incomplete frame is a normal state (`Ok(None)`), not an error. A size that is negative
//! or above `socket.request.max.bytes` is an error, found from the first 4 bytes, before
//! anything is allocated for the frame.

use bytes::{Bytes, BytesMut};

#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The size prefix is negative or above the limit.
    TooLarge(i64),
}

/// Takes the next complete frame (without its size prefix) out of `buf`, if there is one.
pub fn next_frame(buf: &mut BytesMut, max_bytes: u32) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as i64;
    if size < 0 || size > max_bytes as i64 {
        return Err(FrameError::TooLarge(size));
    }
    let total = 4 + size as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let mut frame = buf.split_to(total);
    let _ = frame.split_to(4);
    Ok(Some(frame.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_and_wait_for_more() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0, 0, 0, 3, b'a', b'b']);
        assert_eq!(next_frame(&mut buf, 100), Ok(None));
        buf.extend_from_slice(&[b'c', 0, 0, 0, 1]);
        assert_eq!(next_frame(&mut buf, 100).unwrap().unwrap(), Bytes::from_static(b"abc"));
        assert_eq!(next_frame(&mut buf, 100), Ok(None));
        assert_eq!(buf.len(), 4);
    }

    #[test]
    fn oversized_and_negative_sizes_are_refused_from_the_prefix() {
        let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
        assert_eq!(next_frame(&mut buf, 1 << 20), Err(FrameError::TooLarge(i32::MAX as i64)));
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xfe][..]);
        assert_eq!(next_frame(&mut buf, 1 << 20), Err(FrameError::TooLarge(-2)));
    }
}
