//! A binary WebSocket to the server. The safe API hides web-sys: connect with an
//! event callback, send bytes, close. Dropping the socket closes it and detaches
//! the callbacks. On the server the same API exists and never connects.

/// What a socket reports.
#[derive(Debug)]
pub enum SocketEvent {
    Open,
    Message(Vec<u8>),
    /// The connection ended (or never opened) with this close code and reason.
    Closed {
        code: u16,
        reason: String,
    },
}

#[cfg(feature = "hydrate")]
pub use browser::Socket;

#[cfg(feature = "hydrate")]
mod browser {
    use super::SocketEvent;
    use std::{cell::RefCell, rc::Rc};
    use wasm_bindgen::{closure::Closure, JsCast};
    use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};

    pub struct Socket {
        ws: WebSocket,
        _on_open: Closure<dyn FnMut(Event)>,
        _on_message: Closure<dyn FnMut(MessageEvent)>,
        _on_close: Closure<dyn FnMut(CloseEvent)>,
    }

    impl Socket {
        /// Opens `url`; every event goes to `on_event`.
        pub fn connect(
            url: &str,
            on_event: impl FnMut(SocketEvent) + 'static,
        ) -> Result<Socket, String> {
            let ws = WebSocket::new(url).map_err(|e| format!("{e:?}"))?;
            ws.set_binary_type(BinaryType::Arraybuffer);
            let on_event = Rc::new(RefCell::new(on_event));
            let emit = move |event: SocketEvent| {
                // An event raised while a previous one is handled is dropped
                // rather than panicking; browsers deliver events one at a time.
                if let Ok(mut handler) = on_event.try_borrow_mut() {
                    handler(event);
                }
            };
            let emit = Rc::new(emit);
            let on_open = {
                let emit = emit.clone();
                Closure::<dyn FnMut(Event)>::new(move |_| emit(SocketEvent::Open))
            };
            let on_message = {
                let emit = emit.clone();
                Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                    if let Ok(buffer) = event.data().dyn_into::<js_sys::ArrayBuffer>() {
                        emit(SocketEvent::Message(
                            js_sys::Uint8Array::new(&buffer).to_vec(),
                        ));
                    }
                })
            };
            let on_close = {
                let emit = emit.clone();
                Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
                    emit(SocketEvent::Closed {
                        code: event.code(),
                        reason: event.reason(),
                    })
                })
            };
            ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
            ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
            Ok(Socket {
                ws,
                _on_open: on_open,
                _on_message: on_message,
                _on_close: on_close,
            })
        }

        /// Sends one binary frame; false if the socket is not open.
        pub fn send(&self, bytes: &[u8]) -> bool {
            self.ws.ready_state() == WebSocket::OPEN && self.ws.send_with_u8_array(bytes).is_ok()
        }

        /// Bytes queued but not yet sent.
        pub fn buffered_amount(&self) -> u32 {
            self.ws.buffered_amount()
        }
    }

    impl Drop for Socket {
        fn drop(&mut self) {
            self.ws.set_onopen(None);
            self.ws.set_onmessage(None);
            self.ws.set_onclose(None);
            let _ = self.ws.close();
        }
    }
}

/// Server twin: never connects.
#[cfg(not(feature = "hydrate"))]
pub struct Socket;

#[cfg(not(feature = "hydrate"))]
impl Socket {
    pub fn connect(
        _url: &str,
        _on_event: impl FnMut(SocketEvent) + 'static,
    ) -> Result<Socket, String> {
        Err("no WebSocket on the server".into())
    }

    pub fn send(&self, _bytes: &[u8]) -> bool {
        false
    }

    pub fn buffered_amount(&self) -> u32 {
        0
    }
}
