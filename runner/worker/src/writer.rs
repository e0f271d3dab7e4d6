//! A run's output on its way out of the worker: text (JavaScript's console)
//! or bytes (Python's streams, decoded as UTF-8 here, across writes), held to
//! the caps (the first wall; the page counts again), then written to the
//! shared channel the page reads while the program runs, or, without shared
//! memory, posted in batches at most every 16 ms. Channel layout (the page's side is
//! `pairpad::interop::runner::channel`): Int32 header, [0] bytes committed,
//! [1] = 1 once the output was cut; UTF-8 text from byte 16, with a switch byte
//! before text of the other stream.

use crate::outbox::Reply;
use js_sys::{Atomics, Function, Int32Array, SharedArrayBuffer, Uint8Array};
use pairpad_runner_protocol::{
    messages::FromWorker,
    output::{Caps, Utf8Pieces, CHANNEL_HEADER_BYTES, SWITCH_TO_STDERR, SWITCH_TO_STDOUT},
    Stream,
};
use std::{cell::RefCell, rc::Rc};
use wasm_bindgen::{closure::Closure, JsCast, JsValue};

/// How often, at most, output is posted or the page nudged to read it.
const POST_INTERVAL_MS: f64 = 16.0;

/// The browser's timer and clock, as taken before any program ran.
#[derive(Clone)]
pub struct Clock {
    pub set_timeout: Function,
    pub now: Function,
}

impl Clock {
    pub fn now(&self) -> f64 {
        self.now
            .call0(&JsValue::UNDEFINED)
            .ok()
            .and_then(|now| now.as_f64())
            .unwrap_or(0.0)
    }

    fn after(&self, ms: f64, callback: &Function) {
        let _ = self
            .set_timeout
            .call2(&JsValue::UNDEFINED, callback, &JsValue::from(ms));
    }
}

struct SharedChannel {
    header: Int32Array,
    data: Uint8Array,
    written: u32,
    stream: Stream,
    last_wake_ms: f64,
}

/// Output posted as messages, when the page has no shared memory.
#[derive(Default)]
struct Batches {
    pending: Vec<(Stream, String)>,
    last_post_ms: f64,
    /// A flush is scheduled.
    scheduled: bool,
}

pub struct Writer {
    id: u32,
    caps: Caps,
    truncated: bool,
    channel: Option<SharedChannel>,
    /// Shared with the flush timer, which may fire after the run (and its
    /// writer) ended: Python's worker outlives its runs.
    batches: Rc<RefCell<Batches>>,
    clock: Clock,
    reply: Reply,
    /// A character a byte write ended in the middle of, per stream.
    unfinished: Utf8Pieces,
}

impl Writer {
    pub fn new(
        id: u32,
        channel: Option<SharedArrayBuffer>,
        max_bytes: usize,
        max_lines: usize,
        clock: Clock,
        reply: Reply,
    ) -> Writer {
        let channel = channel.map(|buffer| SharedChannel {
            header: Int32Array::new_with_byte_offset_and_length(&buffer, 0, 4),
            data: Uint8Array::new_with_byte_offset(&buffer, CHANNEL_HEADER_BYTES),
            written: 0,
            stream: Stream::Stdout,
            last_wake_ms: f64::NEG_INFINITY,
        });
        let batches = Rc::new(RefCell::new(Batches {
            last_post_ms: f64::NEG_INFINITY,
            ..Batches::default()
        }));
        Writer {
            id,
            caps: Caps::new(max_bytes, max_lines),
            truncated: false,
            channel,
            batches,
            clock,
            reply,
            unfinished: Utf8Pieces::default(),
        }
    }

    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// How many more bytes of output fit under the byte cap.
    #[cfg(feature = "python")]
    pub fn room(&self) -> usize {
        self.caps.room()
    }

    /// Writes what fits of `text`; past a cap, nothing more is written.
    pub fn write(&mut self, stream: Stream, text: &str) {
        if self.truncated || text.is_empty() {
            return;
        }
        let (part, cut) = self.caps.take(text);
        if !part.is_empty() {
            match self.channel.as_mut() {
                Some(channel) => {
                    if !channel.append(stream, part.as_bytes()) {
                        self.mark_truncated();
                        return;
                    }
                    let now = self.clock.now();
                    if now - channel.last_wake_ms >= POST_INTERVAL_MS {
                        channel.last_wake_ms = now;
                        (self.reply)(FromWorker::Wake {
                            id: f64::from(self.id),
                        });
                    }
                }
                None => self.queue(stream, part),
            }
        }
        if cut {
            self.mark_truncated();
        }
    }

    /// Writes what fits of `bytes`, UTF-8 that may stop or start in the
    /// middle of a character (the rest comes with the next write); bytes that
    /// are not UTF-8 become U+FFFD. (Python's streams write bytes.)
    #[cfg(feature = "python")]
    pub fn write_bytes(&mut self, stream: Stream, bytes: &[u8]) {
        let text = self.unfinished.decode(stream, bytes);
        self.write(stream, &text);
    }

    /// Posts whatever is still waiting (at the end of the run).
    pub fn flush(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let cut_short = self.unfinished.finish(stream);
            self.write(stream, &cut_short);
        }
        if self.channel.is_none() {
            if let Ok(mut batches) = self.batches.try_borrow_mut() {
                post_batch(self.id, &mut batches, self.clock.now(), &self.reply);
            }
        }
    }

    fn mark_truncated(&mut self) {
        self.truncated = true;
        if let Some(channel) = &self.channel {
            let _ = Atomics::store(&channel.header, 1, 1);
        }
    }

    fn queue(&mut self, stream: Stream, text: &str) {
        let Ok(mut batches) = self.batches.try_borrow_mut() else {
            return;
        };
        match batches.pending.last_mut() {
            Some((last, pending)) if *last == stream => pending.push_str(text),
            _ => batches.pending.push((stream, text.to_owned())),
        }
        let now = self.clock.now();
        if now - batches.last_post_ms >= POST_INTERVAL_MS {
            post_batch(self.id, &mut batches, now, &self.reply);
        } else if !batches.scheduled {
            batches.scheduled = true;
            let (id, clock, reply) = (self.id, self.clock.clone(), self.reply.clone());
            let batches = self.batches.clone();
            // Freed once it has run.
            let flush = Closure::once_into_js(move || {
                if let Ok(mut batches) = batches.try_borrow_mut() {
                    batches.scheduled = false;
                    post_batch(id, &mut batches, clock.now(), &reply);
                }
            });
            self.clock.after(POST_INTERVAL_MS, flush.unchecked_ref());
        }
    }
}

impl SharedChannel {
    /// Appends `bytes` (with a switch byte if the stream changes) and
    /// publishes the new length; `false` if the channel is full.
    fn append(&mut self, stream: Stream, bytes: &[u8]) -> bool {
        let switch = (stream != self.stream) as u32;
        let need = bytes.len() as u64 + u64::from(switch);
        if u64::from(self.written) + need > u64::from(self.data.length()) {
            return false;
        }
        if switch == 1 {
            let byte = match stream {
                Stream::Stdout => SWITCH_TO_STDOUT,
                Stream::Stderr => SWITCH_TO_STDERR,
            };
            self.data.set_index(self.written, byte);
            self.written += 1;
            self.stream = stream;
        }
        self.data.set(&Uint8Array::from(bytes), self.written);
        self.written += bytes.len() as u32;
        let _ = Atomics::store(&self.header, 0, self.written as i32);
        true
    }
}

/// Posts the pending output, if any (`now`: the time of posting).
fn post_batch(id: u32, batches: &mut Batches, now: f64, reply: &Reply) {
    if batches.pending.is_empty() {
        return;
    }
    let chunks = std::mem::take(&mut batches.pending);
    batches.last_post_ms = now;
    reply(FromWorker::Out {
        id: f64::from(id),
        chunks,
    });
}
