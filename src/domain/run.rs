//! A code run as every participant sees it: who ran what, how it ended, and its
//! output (capped). Runs are recorded in the session document, so they sync and
//! persist like edits.

use super::Language;
use serde::{Deserialize, Serialize};

/// Most output shared through the document per run (bytes of text). A run may
/// print more locally; the shared copy is cut here so one run never makes a
/// frame larger than the server accepts.
pub const MAX_SHARED_OUTPUT_BYTES: usize = 256 * 1024;
/// Runs kept in the document (older ones are dropped).
pub const MAX_RECORDED_RUNS: u32 = 20;
/// Most output a run in progress shows the others (bytes of text, its last
/// ones): it travels in the runner's presence, which the server caps at a few
/// KiB, and is replaced by the whole record when the run ends.
pub const LIVE_OUTPUT_BYTES: usize = 2_048;

/// Which stream a piece of output came from (defined with the runner's
/// protocol, which produces it).
pub use pairpad_runner_protocol::Stream;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Still going (recorded when it starts).
    Running,
    Ok,
    Error,
    Timeout,
    Stopped,
}

impl RunStatus {
    pub fn label(&self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "finished",
            RunStatus::Error => "failed",
            RunStatus::Timeout => "stopped: time limit",
            RunStatus::Stopped => "stopped",
        }
    }
}

/// One chunk of output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputChunk {
    pub stream: Stream,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// Unique per run: the runner's client id and a counter.
    pub id: String,
    /// Display name of who ran it.
    pub by: String,
    pub language: Language,
    /// Ms since the Unix epoch.
    pub started_at: u64,
    pub duration_ms: u64,
    pub status: RunStatus,
    pub output: Vec<OutputChunk>,
    /// Output was cut (by the run's cap or for sharing).
    pub truncated: bool,
}

impl RunRecord {
    /// Cuts the output to what may be shared, marking the record truncated.
    pub fn cap_for_sharing(&mut self) {
        self.cap_output(MAX_SHARED_OUTPUT_BYTES);
    }

    /// Bytes of output text the record holds.
    pub fn output_bytes(&self) -> usize {
        self.output.iter().map(|chunk| chunk.text.len()).sum()
    }

    /// Cuts the output to at most `budget` bytes (at a character boundary),
    /// marking the record truncated if anything was cut.
    pub fn cap_output(&mut self, budget: usize) {
        let mut budget = budget;
        let mut kept = Vec::new();
        for mut chunk in std::mem::take(&mut self.output) {
            if chunk.text.len() > budget {
                let mut cut = budget;
                while !chunk.text.is_char_boundary(cut) {
                    cut -= 1;
                }
                chunk.text.truncate(cut);
                self.truncated = true;
                if !chunk.text.is_empty() {
                    kept.push(chunk);
                }
                break;
            }
            budget -= chunk.text.len();
            kept.push(chunk);
        }
        self.output = kept;
    }
}

/// A run in progress as its runner's presence announces it, so everyone
/// watches its output stream: the end of its output so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRun {
    /// The id its record will have.
    pub id: String,
    pub language: Language,
    pub output: Vec<OutputChunk>,
    /// Earlier output is not shown (there was more than fits).
    pub truncated: bool,
}

impl LiveRun {
    /// The last `budget` bytes (at most [`LIVE_OUTPUT_BYTES`]) of `output`,
    /// whole lines where it can.
    pub fn new(id: &str, language: Language, output: &[OutputChunk], budget: usize) -> Self {
        let mut budget = budget.min(LIVE_OUTPUT_BYTES);
        let mut kept = Vec::new();
        let mut truncated = false;
        for chunk in output.iter().rev() {
            if chunk.text.len() <= budget {
                budget -= chunk.text.len();
                kept.push(chunk.clone());
                continue;
            }
            truncated = true;
            let mut start = chunk.text.len() - budget;
            while !chunk.text.is_char_boundary(start) {
                start += 1;
            }
            // Start at a line if one starts in what is kept.
            let tail = &chunk.text[start..];
            let tail = if chunk.text.as_bytes()[start - 1] == b'\n' {
                tail
            } else {
                tail.find('\n').map_or(tail, |i| &tail[i + 1..])
            };
            if !tail.is_empty() {
                kept.push(OutputChunk {
                    stream: chunk.stream,
                    text: tail.to_owned(),
                });
            }
            break;
        }
        kept.reverse();
        Self {
            id: id.chars().take(64).collect(),
            language,
            output: kept,
            truncated,
        }
    }

    /// A live run another participant announced, cut to what anyone would
    /// announce (their presence is untrusted input).
    pub fn tamed(self) -> Self {
        let budget = LIVE_OUTPUT_BYTES;
        let truncated = self.truncated;
        let mut live = Self::new(&self.id, self.language, &self.output, budget);
        live.truncated |= truncated;
        live
    }
}

/// Output as lines for display: each line keeps the stream it came from; a
/// chunk without a trailing newline continues on the next chunk of the same
/// stream. Only the last `max_lines` lines are returned, with how many were left out.
pub fn output_lines(chunks: &[OutputChunk], max_lines: usize) -> (Vec<(Stream, String)>, usize) {
    let mut lines: Vec<(Stream, String)> = Vec::new();
    // Whether the last line is still waiting for its newline.
    let mut open = false;
    for chunk in chunks {
        let mut rest = chunk.text.as_str();
        while !rest.is_empty() {
            let (piece, terminated, next) = match rest.find('\n') {
                Some(i) => (&rest[..i], true, &rest[i + 1..]),
                None => (rest, false, ""),
            };
            match lines.last_mut() {
                Some((stream, line)) if open && *stream == chunk.stream => line.push_str(piece),
                _ => lines.push((chunk.stream, piece.to_owned())),
            }
            open = !terminated;
            rest = next;
        }
    }
    let hidden = lines.len().saturating_sub(max_lines);
    (lines.split_off(hidden), hidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_run_keeps_the_last_whole_lines_that_fit() {
        let output = vec![
            chunk(Stream::Stdout, "first line\nsecond line\n"),
            chunk(Stream::Stderr, "warning\n"),
            chunk(Stream::Stdout, "last"),
        ];
        let all = LiveRun::new("r1", Language::Python, &output, 1_000);
        assert_eq!(all.output, output);
        assert!(!all.truncated);

        let end = LiveRun::new("r1", Language::Python, &output, 30);
        assert_eq!(
            end.output,
            vec![
                chunk(Stream::Stdout, "second line\n"),
                chunk(Stream::Stderr, "warning\n"),
                chunk(Stream::Stdout, "last")
            ]
        );
        assert!(end.truncated);
        let huge = vec![chunk(Stream::Stdout, &"é".repeat(5_000))];
        let capped = LiveRun::new("r2", Language::Python, &huge, usize::MAX).tamed();
        assert!(capped.output[0].text.len() <= LIVE_OUTPUT_BYTES);
        assert!(capped.truncated);
    }

    fn record(output: Vec<OutputChunk>) -> RunRecord {
        RunRecord {
            id: "1-1".into(),
            by: "Ada".into(),
            language: Language::Python,
            started_at: 1,
            duration_ms: 2,
            status: RunStatus::Ok,
            output,
            truncated: false,
        }
    }

    #[test]
    fn sharing_caps_output_on_a_character_boundary() {
        let big = "é".repeat(MAX_SHARED_OUTPUT_BYTES); // two bytes each
        let mut run = record(vec![
            OutputChunk {
                stream: Stream::Stdout,
                text: "first\n".into(),
            },
            OutputChunk {
                stream: Stream::Stderr,
                text: big,
            },
            OutputChunk {
                stream: Stream::Stdout,
                text: "never shown".into(),
            },
        ]);
        run.cap_for_sharing();
        assert!(run.truncated);
        assert_eq!(run.output.len(), 2);
        let total: usize = run.output.iter().map(|c| c.text.len()).sum();
        assert!(total <= MAX_SHARED_OUTPUT_BYTES);
        assert_eq!(run.output[1].stream, Stream::Stderr);
    }

    #[test]
    fn small_output_is_kept_whole() {
        let mut run = record(vec![OutputChunk {
            stream: Stream::Stdout,
            text: "hi\n".into(),
        }]);
        run.cap_for_sharing();
        assert!(!run.truncated);
        assert_eq!(run.output[0].text, "hi\n");
    }

    fn chunk(stream: Stream, text: &str) -> OutputChunk {
        OutputChunk {
            stream,
            text: text.into(),
        }
    }

    #[test]
    fn output_splits_into_lines_per_stream() {
        let chunks = [
            chunk(Stream::Stdout, "a\nb"),
            chunk(Stream::Stdout, "c\n"),
            chunk(Stream::Stderr, "oops\n"),
            chunk(Stream::Stdout, "\nlast"),
        ];
        let (lines, hidden) = output_lines(&chunks, 100);
        assert_eq!(hidden, 0);
        assert_eq!(
            lines,
            vec![
                (Stream::Stdout, "a".into()),
                (Stream::Stdout, "bc".into()),
                (Stream::Stderr, "oops".into()),
                (Stream::Stdout, "".into()),
                (Stream::Stdout, "last".into()),
            ]
        );
        let (tail, hidden) = output_lines(&chunks, 2);
        assert_eq!(hidden, 3);
        assert_eq!(tail[1], (Stream::Stdout, "last".into()));
    }

    #[test]
    fn records_serialise_with_camel_case_keys() {
        let json = serde_json::to_string(&record(Vec::new())).unwrap();
        assert!(
            json.contains("\"startedAt\":1") && json.contains("\"status\":\"ok\""),
            "{json}"
        );
    }
}
