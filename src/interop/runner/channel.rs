//! Shared memory between the page and a runner worker (browser only): whether
//! the page may have it, allocating it without a JavaScript exception, and a
//! run's output channel: the worker appends UTF-8 text (with stream-switch
//! bytes, see `output`) and publishes its length; the page reads what is new.

use crate::domain::run::Stream;
use js_sys::{Atomics, Int32Array, Reflect, SharedArrayBuffer, Uint8Array};
use pairpad_runner_protocol::output::{ChannelDecoder, CHANNEL_HEADER_BYTES};
use wasm_bindgen::{JsCast, JsValue};

/// The largest output channel allocated, whatever the byte cap.
const MAX_CHANNEL_BYTES: usize = 64 << 20;

/// Whether workers can share memory with the page (SharedArrayBuffer exists
/// and the page is cross-origin isolated).
pub fn shared_memory_available() -> bool {
    let global = js_sys::global();
    let has = |name: &str| Reflect::get(&global, &JsValue::from_str(name)).unwrap_or_default();
    has("SharedArrayBuffer").is_function() && has("crossOriginIsolated").as_bool() == Some(true)
}

/// A SharedArrayBuffer of `bytes`, or `None` if the browser refuses the memory.
/// (Through `Reflect::construct`, which returns the exception: a JavaScript
/// exception thrown through the runner would leave its state borrowed for good.)
pub fn allocate_shared(bytes: usize) -> Option<SharedArrayBuffer> {
    let constructor =
        Reflect::get(&js_sys::global(), &JsValue::from_str("SharedArrayBuffer")).ok()?;
    let constructor = constructor.dyn_into::<js_sys::Function>().ok()?;
    let arguments = js_sys::Array::of1(&JsValue::from(bytes as f64));
    Reflect::construct(&constructor, &arguments)
        .ok()?
        .dyn_into::<SharedArrayBuffer>()
        .ok()
}

/// A run's shared output channel. Header (Int32): [0] bytes committed, [1] set
/// to 1 once the worker truncated; data from byte 16.
pub struct Channel {
    pub buffer: SharedArrayBuffer,
    header: Int32Array,
    data: Uint8Array,
    read: u32,
    decoder: ChannelDecoder,
}

impl Channel {
    /// A channel for a run that may print `max_output_bytes`; `None` if the
    /// memory cannot be had (the worker then posts its output instead).
    pub fn new(max_output_bytes: usize) -> Option<Channel> {
        // Worst case: a stream-switch byte before every byte of text.
        let size = max_output_bytes
            .saturating_mul(2)
            .saturating_add(CHANNEL_HEADER_BYTES as usize + 64)
            .min(MAX_CHANNEL_BYTES);
        let buffer = allocate_shared(size)?;
        Some(Channel {
            header: Int32Array::new_with_byte_offset_and_length(&buffer, 0, 4),
            data: Uint8Array::new_with_byte_offset(&buffer, CHANNEL_HEADER_BYTES),
            buffer,
            read: 0,
            decoder: ChannelDecoder::default(),
        })
    }

    /// What the worker wrote since the last read (at most `budget` bytes), and
    /// whether the worker has flagged truncation and everything before the
    /// flag has now been read.
    pub fn read(&mut self, budget: u32) -> (Vec<(Stream, String)>, bool) {
        // The worker writes its data before it raises the truncated flag, so
        // read the flag first: everything written before it is then visible.
        let flagged = Atomics::load(&self.header, 1).unwrap_or(0) == 1;
        let written = Atomics::load(&self.header, 0).unwrap_or(0).max(0) as u32;
        let written = written.min(self.data.length());
        let end = written.min(self.read.saturating_add(budget));
        let mut pieces = Vec::new();
        if end > self.read {
            // A private copy: the worker may be writing after `end` meanwhile.
            let bytes = self.data.slice(self.read, end).to_vec();
            self.read = end;
            pieces = self.decoder.decode(&bytes);
        }
        (pieces, flagged && self.read >= written)
    }
}
