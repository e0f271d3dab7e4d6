//! A run's output: the output channel's layout and byte format (UTF-8 text
//! with stream-switch bytes, decoded as it streams in), the caps both the
//! worker (first wall) and the page (second wall) hold every run to, and the
//! notices the page adds to the output. The page's runner and the workers move
//! the bytes and call this.

use crate::Stream;

/// The output channel (a SharedArrayBuffer) starts with this Int32 header:
/// [0] bytes of text committed, [1] = 1 once the worker cut the output; the
/// text follows it.
pub const CHANNEL_HEADER_BYTES: u32 = 16;

/// In the output channel, this byte switches the text that follows to stdout.
/// Neither switch byte occurs in UTF-8.
pub const SWITCH_TO_STDOUT: u8 = 0xFE;
/// In the output channel, this byte switches the text that follows to stderr.
pub const SWITCH_TO_STDERR: u8 = 0xFF;

/// Turns the channel's bytes back into text, a piece at a time: a character
/// split between two reads is held until its last byte arrives, and bytes that
/// are not UTF-8 become U+FFFD (as the browser's `TextDecoder` would).
#[derive(Debug)]
pub struct ChannelDecoder {
    stream: Stream,
    text: Utf8Pieces,
}

impl Default for ChannelDecoder {
    fn default() -> Self {
        ChannelDecoder {
            stream: Stream::Stdout,
            text: Utf8Pieces::default(),
        }
    }
}

impl ChannelDecoder {
    /// Decodes the bytes read since the last call, in order, as (stream, text)
    /// pieces.
    pub fn decode(&mut self, bytes: &[u8]) -> Vec<(Stream, String)> {
        let mut pieces: Vec<(Stream, String)> = Vec::new();
        for segment in bytes.split_inclusive(|b| *b == SWITCH_TO_STDOUT || *b == SWITCH_TO_STDERR) {
            let (text, switch) = match segment.split_last() {
                Some((&SWITCH_TO_STDOUT, text)) => (text, Some(Stream::Stdout)),
                Some((&SWITCH_TO_STDERR, text)) => (text, Some(Stream::Stderr)),
                _ => (segment, None),
            };
            let decoded = self.text.decode(self.stream, text);
            if !decoded.is_empty() {
                match pieces.last_mut() {
                    Some((stream, last)) if *stream == self.stream => last.push_str(&decoded),
                    _ => pieces.push((self.stream, decoded)),
                }
            }
            if let Some(stream) = switch {
                self.stream = stream;
            }
        }
        pieces
    }
}

/// Text that arrives as UTF-8 bytes in pieces, per stream: a character split
/// between two pieces is held until its last byte arrives, and bytes that are
/// not UTF-8 become U+FFFD (as the browser's `TextDecoder` would). The page
/// decodes the output channel with it, the Python worker its streams' writes.
#[derive(Debug, Default)]
pub struct Utf8Pieces {
    /// The start of a character not complete yet, per stream (stdout, stderr).
    held: [Vec<u8>; 2],
}

impl Utf8Pieces {
    /// The text of `bytes` (after what was held for `stream`), up to a
    /// character not complete yet.
    pub fn decode(&mut self, stream: Stream, bytes: &[u8]) -> String {
        let held = &mut self.held[stream_index(stream)];
        held.extend_from_slice(bytes);
        let mut text = String::new();
        let mut rest: &[u8] = held;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    // Checked by from_utf8 just above.
                    text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match error.error_len() {
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        // A character cut by the end of this piece: wait for the rest.
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        let keep = rest.len();
        let drained = held.len() - keep;
        held.drain(..drained);
        text
    }

    /// What is still held for `stream`, as text: the stream ended inside a
    /// character.
    pub fn finish(&mut self, stream: Stream) -> String {
        let held = std::mem::take(&mut self.held[stream_index(stream)]);
        String::from_utf8_lossy(&held).into_owned()
    }
}

fn stream_index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

/// The two caps on a run's output, counted as text passes: at most
/// `max_bytes` of UTF-8 and `max_lines` lines. Both the worker (first wall,
/// before the text reaches the page) and the page (second wall) count with it.
#[derive(Debug)]
pub struct Caps {
    max_bytes: usize,
    max_lines: usize,
    bytes: usize,
    lines: usize,
}

impl Caps {
    pub fn new(max_bytes: usize, max_lines: usize) -> Caps {
        Caps {
            max_bytes,
            max_lines,
            bytes: 0,
            lines: 0,
        }
    }

    /// How many more bytes fit under the byte cap.
    pub fn room(&self) -> usize {
        self.max_bytes.saturating_sub(self.bytes)
    }

    /// The part of `text` that still fits (cut at a character boundary, or
    /// after the last line allowed), counted; and whether anything was cut.
    pub fn take<'a>(&mut self, text: &'a str) -> (&'a str, bool) {
        let room = self.room();
        let mut part = text;
        let mut cut = false;
        if part.len() > room {
            part = &part[..floor_char_boundary(part, room)];
            cut = true;
        }
        let mut new_lines = 0;
        if self.lines >= self.max_lines {
            part = "";
            cut = !text.is_empty();
        } else {
            for (index, _) in part.match_indices('\n') {
                new_lines += 1;
                if self.lines + new_lines >= self.max_lines {
                    if index + 1 < text.len() {
                        cut = true;
                    }
                    part = &part[..index + 1];
                    break;
                }
            }
        }
        self.bytes += part.len();
        self.lines += new_lines;
        (part, cut)
    }

    /// Whether the line cap (rather than the byte cap) is the one reached.
    fn lines_full(&self) -> bool {
        self.lines >= self.max_lines
    }
}

/// What a run may print, counted as it is shown (see [`Caps`]). Past either
/// cap, the output is cut and one notice says which cap was hit.
#[derive(Debug)]
pub struct OutputCaps {
    caps: Caps,
    truncated: bool,
    /// Whether what was shown so far ends a line (notices start on their own).
    at_line_start: bool,
}

impl OutputCaps {
    pub fn new(max_bytes: usize, max_lines: usize) -> OutputCaps {
        OutputCaps {
            caps: Caps::new(max_bytes, max_lines),
            truncated: false,
            at_line_start: true,
        }
    }

    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Adds `text` to what is shown, cut to the caps; the pieces to show go to `out`
    /// (with the truncation notice when this text hit a cap).
    pub fn deliver(&mut self, stream: Stream, text: &str, out: &mut Vec<(Stream, String)>) {
        if self.truncated || text.is_empty() {
            return;
        }
        let (part, cut) = self.caps.take(text);
        if !part.is_empty() {
            self.show(stream, part.to_owned(), out);
        }
        if cut {
            self.mark_truncated(out);
        }
    }

    /// Records that the output was cut (by the worker, or here) and adds the
    /// notice saying which cap, once.
    pub fn mark_truncated(&mut self, out: &mut Vec<(Stream, String)>) {
        if self.truncated {
            return;
        }
        self.truncated = true;
        let notice = if self.caps.lines_full() {
            format!(
                "[output truncated: more than {} lines]",
                self.caps.max_lines
            )
        } else {
            format!(
                "[output truncated: more than {} bytes]",
                self.caps.max_bytes
            )
        };
        self.notice(&notice, out);
    }

    /// A line the page adds to the run's output (on stderr, on a line of its own;
    /// not counted against the caps).
    pub fn notice(&mut self, text: &str, out: &mut Vec<(Stream, String)>) {
        let prefix = if self.at_line_start { "" } else { "\n" };
        self.show(Stream::Stderr, format!("{prefix}{text}\n"), out);
    }

    fn show(&mut self, stream: Stream, text: String, out: &mut Vec<(Stream, String)>) {
        self.at_line_start = text.ends_with('\n');
        out.push((stream, text));
    }
}

/// The largest index at most `index` that starts a character of `text`.
fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut end = index.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// The notice for a run stopped at its time limit.
pub fn time_limit_notice(time_limit_ms: u64) -> String {
    format!("[time limit exceeded: the program was stopped after {time_limit_ms} ms]")
}

/// The notice for a run its author stopped.
pub const STOPPED_NOTICE: &str = "[stopped]";

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(pieces: &[(Stream, String)]) -> String {
        pieces
            .iter()
            .map(|(stream, text)| match stream {
                Stream::Stdout => format!("<out>{text}"),
                Stream::Stderr => format!("<err>{text}"),
            })
            .collect()
    }

    #[test]
    fn the_channel_switches_streams_and_joins_characters_split_between_reads() {
        let mut decoder = ChannelDecoder::default();
        let mut bytes = b"a\n".to_vec();
        bytes.push(SWITCH_TO_STDERR);
        bytes.extend_from_slice("é".as_bytes());
        let (first, second) = bytes.split_at(bytes.len() - 1);
        assert_eq!(shown(&decoder.decode(first)), "<out>a\n");
        let mut rest = second.to_vec();
        rest.push(SWITCH_TO_STDOUT);
        rest.extend_from_slice(b"b");
        assert_eq!(shown(&decoder.decode(&rest)), "<err>é<out>b");
    }

    #[test]
    fn a_character_split_on_one_stream_is_not_mixed_with_the_other_stream() {
        let mut decoder = ChannelDecoder::default();
        let euro = "€".as_bytes();
        let mut bytes = euro[..1].to_vec();
        bytes.push(SWITCH_TO_STDERR);
        bytes.extend_from_slice(b"x");
        bytes.push(SWITCH_TO_STDOUT);
        bytes.extend_from_slice(&euro[1..]);
        assert_eq!(shown(&decoder.decode(&bytes)), "<err>x<out>€");
    }

    #[test]
    fn bytes_that_are_not_utf8_show_as_replacement_characters() {
        let mut decoder = ChannelDecoder::default();
        assert_eq!(
            shown(&decoder.decode(&[b'a', 0xC0, b'b'])),
            "<out>a\u{FFFD}b"
        );
    }

    #[test]
    fn output_within_the_caps_is_shown_whole() {
        let mut caps = OutputCaps::new(100, 10);
        let mut out = Vec::new();
        caps.deliver(Stream::Stdout, "one\ntwo\n", &mut out);
        caps.deliver(Stream::Stderr, "three", &mut out);
        assert_eq!(shown(&out), "<out>one\ntwo\n<err>three");
        assert!(!caps.truncated());
    }

    #[test]
    fn the_byte_cap_cuts_on_a_character_boundary_and_says_so_once() {
        let mut caps = OutputCaps::new(5, 100);
        let mut out = Vec::new();
        caps.deliver(Stream::Stdout, "abcé€", &mut out);
        caps.deliver(Stream::Stdout, "more", &mut out);
        assert_eq!(
            shown(&out),
            "<out>abcé<err>\n[output truncated: more than 5 bytes]\n"
        );
        assert!(caps.truncated());
    }

    #[test]
    fn the_line_cap_keeps_the_last_whole_line() {
        let mut caps = OutputCaps::new(1000, 2);
        let mut out = Vec::new();
        caps.deliver(Stream::Stdout, "1\n2\n3\n", &mut out);
        assert_eq!(
            shown(&out),
            "<out>1\n2\n<err>[output truncated: more than 2 lines]\n"
        );
    }

    #[test]
    fn reaching_the_line_cap_exactly_is_not_truncation() {
        let mut caps = OutputCaps::new(1000, 2);
        let mut out = Vec::new();
        caps.deliver(Stream::Stdout, "1\n2\n", &mut out);
        assert!(!caps.truncated());
        caps.deliver(Stream::Stdout, "3", &mut out);
        assert!(caps.truncated());
        assert_eq!(
            shown(&out),
            "<out>1\n2\n<err>[output truncated: more than 2 lines]\n"
        );
    }

    #[test]
    fn notices_start_on_a_line_of_their_own() {
        let mut caps = OutputCaps::new(1000, 100);
        let mut out = Vec::new();
        caps.deliver(Stream::Stdout, "no newline", &mut out);
        caps.notice(STOPPED_NOTICE, &mut out);
        caps.notice(&time_limit_notice(5000), &mut out);
        assert_eq!(
            shown(&out),
            "<out>no newline<err>\n[stopped]\n<err>[time limit exceeded: the program was stopped after 5000 ms]\n"
        );
    }

    #[test]
    fn utf8_pieces_hold_a_split_character_per_stream_and_replace_bad_bytes() {
        let mut pieces = Utf8Pieces::default();
        let e_acute = "\u{e9}".as_bytes();
        assert_eq!(pieces.decode(Stream::Stdout, &[b'h', e_acute[0]]), "h");
        assert_eq!(
            pieces.decode(Stream::Stderr, b"err"),
            "err",
            "streams apart"
        );
        assert_eq!(
            pieces.decode(Stream::Stdout, &[e_acute[1], b'!']),
            "\u{e9}!"
        );
        let bad = [b'a', 0xff, b'b', 0xfe, 0xe2, 0x82];
        assert_eq!(pieces.decode(Stream::Stdout, &bad), "a\u{fffd}b\u{fffd}");
        assert_eq!(
            pieces.finish(Stream::Stdout),
            "\u{fffd}",
            "a stream that ends inside a character"
        );
        assert_eq!(pieces.finish(Stream::Stdout), "");
    }
}
