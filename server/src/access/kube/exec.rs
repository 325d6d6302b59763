//! Reading an exec stream as it passes (`kubectl exec`, `attach`): the bytes go through
//! untouched, and a copy is read here into the remote command protocol's messages
//! (`v4`/`v5.channel.k8s.io` over WebSocket: each binary message starts with its channel, 0
//! stdin, 1 stdout, 2 stderr, 3 status, 4 resize, 255 close), so an interactive session is
//! recorded like an SSH one. Pure and bounded (fuzzed: `fuzz/fuzz_targets/kube_exec.rs`): a
//! message larger than [`MAX_MESSAGE`] is skipped, never buffered.

/// The largest message kept for the recording; larger ones pass through unread.
pub const MAX_MESSAGE: usize = 1 << 20;

/// The channels a reader keeps, as a bit set (channels 0 to 7; 255, the close signal, never).
fn channel_mask(channels: &[u8]) -> u8 {
    channels.iter().filter(|c| **c < 8).fold(0u8, |m, c| m | (1 << c))
}

/// Whether `mask` keeps `channel`.
fn keeps(mask: u8, channel: u8) -> bool {
    channel < 8 && mask & (1 << channel) != 0
}

/// What is left of `bytes` after the part of a skipped payload still owed (`skip`) passes.
fn pass_skipped<'a>(skip: &mut u64, bytes: &'a [u8]) -> &'a [u8] {
    let n = usize::try_from(*skip).unwrap_or(usize::MAX).min(bytes.len());
    *skip -= n as u64;
    &bytes[n..]
}

/// One message's channel and data (the channel byte removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelData {
    /// 0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize.
    pub channel: u8,
    /// The bytes.
    pub data: Vec<u8>,
}

/// Reads WebSocket frames out of one direction of a connection, fed in pieces of any size.
/// Messages of channels it does not want are skipped as they pass, never copied: reading a
/// bulk `kubectl exec` for its exit status costs a few bytes of header per frame.
#[derive(Debug)]
pub struct FrameReader {
    /// Which channels to keep (bit n: channel n, for n < 8; 255 is never kept).
    want: u8,
    buf: Vec<u8>,
    /// Payload bytes of an oversized frame still to skip.
    skip: u64,
    /// A fragmented message being assembled.
    partial: Option<Vec<u8>>,
    /// The connection spoke something that is not WebSocket: stop reading it.
    broken: bool,
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader::new()
    }
}

impl FrameReader {
    /// A reader keeping every channel.
    pub fn new() -> FrameReader {
        FrameReader::only(&[0, 1, 2, 3, 4, 5, 6, 7])
    }

    /// A reader keeping only these channels' messages.
    pub fn only(channels: &[u8]) -> FrameReader {
        FrameReader { want: channel_mask(channels), buf: Vec::new(), skip: 0, partial: None, broken: false }
    }

    fn wanted(&self, channel: u8) -> bool {
        keeps(self.want, channel)
    }

    /// Feeds bytes; returns the complete data messages they finish.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<ChannelData> {
        let mut out = Vec::new();
        if self.broken {
            return out;
        }
        bytes = pass_skipped(&mut self.skip, bytes);
        self.buf.extend_from_slice(bytes);
        loop {
            match self.next_frame() {
                Step::Need => break,
                Step::Broken => {
                    self.broken = true;
                    self.buf = Vec::new();
                    break;
                }
                Step::Frame { fin, opcode, payload } => self.message(fin, opcode, payload, &mut out),
                Step::Skipped => {}
            }
        }
        out
    }

    fn message(&mut self, fin: bool, opcode: u8, payload: Vec<u8>, out: &mut Vec<ChannelData>) {
        let data = match opcode {
            0x0 => match self.partial.as_mut() {
                Some(p) if p.len() + payload.len() <= MAX_MESSAGE => {
                    p.extend_from_slice(&payload);
                    if !fin {
                        return;
                    }
                    self.partial.take().unwrap_or_default()
                }
                _ => {
                    self.partial = None;
                    return;
                }
            },
            0x1 | 0x2 if !fin => {
                self.partial = Some(payload);
                return;
            }
            0x1 | 0x2 => payload,
            // Control frames (close, ping, pong) carry no stream data.
            _ => return,
        };
        if let Some((&channel, rest)) = data.split_first() {
            out.push(ChannelData { channel, data: rest.to_vec() });
        }
    }

    fn next_frame(&mut self) -> Step {
        let b = &self.buf;
        if b.len() < 2 {
            return Step::Need;
        }
        let fin = b[0] & 0x80 != 0;
        let opcode = b[0] & 0x0f;
        if b[0] & 0x70 != 0 || !matches!(opcode, 0x0..=0x2 | 0x8..=0xa) {
            return Step::Broken;
        }
        let masked = b[1] & 0x80 != 0;
        let (len, mut at) = match b[1] & 0x7f {
            126 => {
                if b.len() < 4 {
                    return Step::Need;
                }
                (u64::from(u16::from_be_bytes([b[2], b[3]])), 4)
            }
            127 => {
                if b.len() < 10 {
                    return Step::Need;
                }
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n), 10)
            }
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            if b.len() < at + 4 {
                return Step::Need;
            }
            let m = [b[at], b[at + 1], b[at + 2], b[at + 3]];
            at += 4;
            Some(m)
        } else {
            None
        };
        // A data frame that starts a message of a channel not wanted: skip it as it passes (a
        // continuation belongs to the message before it, kept or not by then).
        let unwanted = matches!(opcode, 0x1 | 0x2) && len > 0 && {
            if self.buf.len() <= at {
                return Step::Need;
            }
            let first = self.buf[at] ^ mask.map_or(0, |m| m[0]);
            !self.wanted(first)
        };
        if unwanted || len > MAX_MESSAGE as u64 {
            // Skip it: what is here now, and the rest as it arrives.
            let here = (self.buf.len() - at) as u64;
            let drop_now = here.min(len);
            self.skip = len - drop_now;
            self.buf.drain(..at + drop_now as usize);
            if opcode == 0x0 || !fin || unwanted {
                self.partial = None;
            }
            return Step::Skipped;
        }
        let len = len as usize;
        if self.buf.len() < at + len {
            return Step::Need;
        }
        let mut payload: Vec<u8> = self.buf[at..at + len].to_vec();
        if let Some(m) = mask {
            for (i, byte) in payload.iter_mut().enumerate() {
                *byte ^= m[i % 4];
            }
        }
        self.buf.drain(..at + len);
        Step::Frame { fin, opcode, payload }
    }
}

enum Step {
    Need,
    Broken,
    Skipped,
    Frame { fin: bool, opcode: u8, payload: Vec<u8> },
}

/// The streams of a SPDY remote command connection, in the order the client creates them
/// (it numbers them 1, 3, 5, ...): error, then stdin, stdout, stderr and resize as the request
/// asks (no stderr with a terminal).
pub fn spdy_streams(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Vec<u8> {
    // Channels as the WebSocket protocol numbers them: 3 error, 0 stdin, 1 stdout, 2 stderr, 4 resize.
    let mut v = vec![3];
    if stdin {
        v.push(0);
    }
    if stdout {
        v.push(1);
    }
    if stderr && !tty {
        v.push(2);
    }
    if tty {
        v.push(4);
    }
    v
}

/// Reads one direction of a SPDY/3.1 remote command connection (kubectl's fallback when
/// WebSocket is refused, and older clients): data frames become [`ChannelData`] of the channel
/// their stream carries (see [`spdy_streams`]); control frames are skipped; unwanted channels'
/// payloads pass unread. A stream's end (FIN) is an empty message of its channel.
#[derive(Debug)]
pub struct SpdyReader {
    want: u8,
    streams: Vec<u8>,
    buf: Vec<u8>,
    skip: u64,
    broken: bool,
}

impl SpdyReader {
    /// A reader for a connection whose streams carry `streams` (in creation order), keeping
    /// only `channels`.
    pub fn new(streams: Vec<u8>, channels: &[u8]) -> SpdyReader {
        SpdyReader { want: channel_mask(channels), streams, buf: Vec::new(), skip: 0, broken: false }
    }

    fn channel_of(&self, id: u32) -> Option<u8> {
        if id == 0 || id.is_multiple_of(2) {
            return None;
        }
        self.streams.get(((id - 1) / 2) as usize).copied()
    }

    /// Feeds bytes; returns the data (and ends) of wanted channels they complete.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<ChannelData> {
        let mut out = Vec::new();
        if self.broken {
            return out;
        }
        bytes = pass_skipped(&mut self.skip, bytes);
        self.buf.extend_from_slice(bytes);
        loop {
            if self.buf.len() < 8 {
                break;
            }
            let b = &self.buf;
            let len = (usize::from(b[5]) << 16) | (usize::from(b[6]) << 8) | usize::from(b[7]);
            let control = b[0] & 0x80 != 0;
            if control && (u16::from_be_bytes([b[0], b[1]]) & 0x7fff) != 3 {
                self.broken = true;
                self.buf = Vec::new();
                break;
            }
            let channel = if control { None } else { self.channel_of(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff) };
            let fin = !control && b[4] & 0x01 != 0;
            let keep = channel.is_some_and(|c| keeps(self.want, c));
            if !keep || len > MAX_MESSAGE {
                // Skip it: what is here now, and the rest as it arrives.
                let here = self.buf.len() - 8;
                let now = here.min(len);
                self.skip = (len - now) as u64;
                self.buf.drain(..8 + now);
                if keep && fin {
                    out.push(ChannelData { channel: channel.unwrap_or(0), data: Vec::new() });
                }
                if self.skip > 0 {
                    break;
                }
                continue;
            }
            if self.buf.len() < 8 + len {
                break;
            }
            let data = self.buf[8..8 + len].to_vec();
            self.buf.drain(..8 + len);
            let c = channel.unwrap_or(0);
            if !data.is_empty() {
                out.push(ChannelData { channel: c, data });
            }
            if fin {
                out.push(ChannelData { channel: c, data: Vec::new() });
            }
        }
        out
    }
}

/// A terminal size from a resize message (`{"Width":80,"Height":24}`).
pub fn resize(data: &[u8]) -> Option<(u16, u16)> {
    #[derive(serde::Deserialize)]
    struct Size {
        #[serde(rename = "Width")]
        width: u16,
        #[serde(rename = "Height")]
        height: u16,
    }
    let s: Size = serde_json::from_slice(data).ok()?;
    Some((s.width, s.height))
}

/// The exit code in the status message an exec ends with (`Success` is 0; a
/// `NonZeroExitCode` carries an `ExitCode` cause).
pub fn exit_code(status: &[u8]) -> Option<i32> {
    let v: serde_json::Value = serde_json::from_slice(status).ok()?;
    if v["status"] == "Success" {
        return Some(0);
    }
    v["details"]["causes"]
        .as_array()?
        .iter()
        .find(|c| c["reason"] == "ExitCode")
        .and_then(|c| c["message"].as_str())
        .and_then(|m| m.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut f = vec![(if fin { 0x80 } else { 0 }) | opcode];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => f.push(m | n as u8),
            n if n < 65536 => {
                f.push(m | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(k) => {
                f.extend_from_slice(&k);
                f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
            }
            None => f.extend_from_slice(payload),
        }
        f
    }

    #[test]
    fn reads_channels_in_any_split() {
        let mut bytes = frame(true, 2, b"\x01hello", None);
        bytes.extend(frame(true, 2, b"\x02oops", Some([1, 2, 3, 4])));
        bytes.extend(frame(true, 9, b"", None));
        bytes.extend(frame(false, 2, b"\x01par", None));
        bytes.extend(frame(true, 0, b"ts", None));
        let big = vec![b'x'; 70_000];
        let mut ch1 = vec![1u8];
        ch1.extend_from_slice(&big);
        bytes.extend(frame(true, 2, &ch1, None));
        let want = vec![
            ChannelData { channel: 1, data: b"hello".to_vec() },
            ChannelData { channel: 2, data: b"oops".to_vec() },
            ChannelData { channel: 1, data: b"parts".to_vec() },
            ChannelData { channel: 1, data: big.clone() },
        ];
        for step in [1, 3, 7, 1000, bytes.len()] {
            let mut r = FrameReader::new();
            let mut got = Vec::new();
            for piece in bytes.chunks(step) {
                got.extend(r.feed(piece));
            }
            assert_eq!(got, want, "pieces of {step}");
        }
    }

    #[test]
    fn unwanted_channels_pass_unread() {
        let mut bytes = frame(true, 2, &[&[1u8][..], &vec![b'o'; 100_000]].concat(), None);
        bytes.extend(frame(false, 2, b"\x02part", None));
        bytes.extend(frame(true, 0, b"-of-stderr", None));
        bytes.extend(frame(true, 2, &[&[3u8][..], br#"{"status":"Success"}"#].concat(), Some([9, 8, 7, 6])));
        for step in [1, 5, 4096, bytes.len()] {
            let mut r = FrameReader::only(&[3]);
            let mut got = Vec::new();
            let mut peak = 0;
            for piece in bytes.chunks(step) {
                got.extend(r.feed(piece));
                peak = peak.max(r.buf.capacity());
            }
            assert_eq!(got, vec![ChannelData { channel: 3, data: br#"{"status":"Success"}"#.to_vec() }], "pieces of {step}");
            assert!(peak < 70_000 || step == bytes.len(), "stdout was buffered: {peak} bytes (pieces of {step})");
        }
    }

    #[test]
    fn oversized_and_garbage() {
        let mut huge = vec![1u8];
        huge.extend(std::iter::repeat_n(b'y', MAX_MESSAGE + 10));
        let mut bytes = frame(true, 2, &huge, None);
        bytes.extend(frame(true, 2, b"\x01after", None));
        let mut r = FrameReader::new();
        let mut got = Vec::new();
        for piece in bytes.chunks(4096) {
            got.extend(r.feed(piece));
        }
        assert_eq!(got, vec![ChannelData { channel: 1, data: b"after".to_vec() }]);
        let mut r = FrameReader::new();
        assert!(r.feed(b"HTTP/1.1 200 OK\r\n").is_empty());
        assert!(r.feed(&frame(true, 2, b"\x01x", None)).is_empty(), "a broken stream stays unread");
    }

    fn spdy_data(id: u32, fin: bool, data: &[u8]) -> Vec<u8> {
        let mut f = id.to_be_bytes().to_vec();
        f.push(u8::from(fin));
        f.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn spdy_streams_by_order() {
        // kubectl exec -it: error 1, stdin 3, stdout 5, resize 7.
        let streams = spdy_streams(true, true, true, true);
        assert_eq!(streams, [3, 0, 1, 4]);
        let mut bytes = vec![0x80, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 5];
        bytes.extend(spdy_data(5, false, b"prompt$ "));
        bytes.extend(spdy_data(3, false, b"typed"));
        bytes.extend(spdy_data(5, false, &vec![b'x'; 100_000]));
        bytes.extend(spdy_data(1, false, br#"{"status":"Failure"}"#));
        bytes.extend(spdy_data(1, true, b""));
        for step in [1, 7, 4096, bytes.len()] {
            let mut r = SpdyReader::new(streams.clone(), &[1, 3]);
            let mut got = Vec::new();
            for piece in bytes.chunks(step) {
                got.extend(r.feed(piece));
            }
            let out: Vec<u8> = got.iter().filter(|m| m.channel == 1).flat_map(|m| m.data.clone()).collect();
            assert_eq!(out.len(), 8 + 100_000, "pieces of {step}");
            let errs: Vec<&ChannelData> = got.iter().filter(|m| m.channel == 3).collect();
            assert_eq!(errs.len(), 2, "the status and the stream's end: {errs:?}");
            assert!(errs[1].data.is_empty());
            assert!(got.iter().all(|m| m.channel != 0), "stdin was not wanted");
        }
        let mut r = SpdyReader::new(streams, &[3]);
        assert!(r.feed(b"HTTP/1.1 200 OK\r\n\r\n").is_empty());
    }

    #[test]
    fn status_and_resize() {
        assert_eq!(exit_code(br#"{"metadata":{},"status":"Success"}"#), Some(0));
        let failed =
            br#"{"metadata":{},"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
        assert_eq!(exit_code(failed), Some(3));
        assert_eq!(exit_code(b"nope"), None);
        assert_eq!(resize(br#"{"Width":120,"Height":40}"#), Some((120, 40)));
    }
}
