//! A run's output on its way out of the worker: held to the caps (the first
//! wall; the page counts again), then written to the shared channel the page
//! reads while the program runs, or, without shared memory, posted in batches
//! at most every 16 ms. Channel layout (the page's side is
//! `pairpad::interop::runner::channel`): Int32 header, [0] bytes committed,
//! [1] = 1 once the output was cut; UTF-8 text from byte 16, with a switch byte
//! before text of the other stream.

use crate::Reply;
use js_sys::{Atomics, Function, Int32Array, SharedArrayBuffer, Uint8Array};
use pairpad_runner_protocol::{
    messages::FromWorker,
    output::{Caps, CHANNEL_HEADER_BYTES, SWITCH_TO_STDERR, SWITCH_TO_STDOUT},
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
    batches: Rc<RefCell<Batches>>,
    /// Posts the pending batch (kept for the timer).
    flush_later: Option<Closure<dyn FnMut()>>,
    clock: Clock,
    reply: Reply,
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
        let flush_later = channel.is_none().then(|| {
            let batches = batches.clone();
            let reply = reply.clone();
            let clock = clock.clone();
            Closure::<dyn FnMut()>::new(move || {
                if let Ok(mut batches) = batches.try_borrow_mut() {
                    batches.scheduled = false;
                    post_batch(id, &mut batches, clock.now(), &reply);
                }
            })
        });
        Writer {
            id,
            caps: Caps::new(max_bytes, max_lines),
            truncated: false,
            channel,
            batches,
            flush_later,
            clock,
            reply,
        }
    }

    pub fn truncated(&self) -> bool {
        self.truncated
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

    /// Posts whatever is still waiting (at the end of the run).
    pub fn flush(&mut self) {
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
            if let Some(flush) = &self.flush_later {
                batches.scheduled = true;
                self.clock
                    .after(POST_INTERVAL_MS, flush.as_ref().unchecked_ref());
            }
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
