//! The WebSocket endpoint `/ws/<session-id>`: upgrades, enforces per-connection
//! limits (frame size, message rate, connections per IP) and shuttles frames
//! between the socket and the session's room. A bad frame closes only its own
//! connection, with a close code and a reason.

use super::{
    hub::{Hub, IpSlot},
    metrics::Metrics,
    queue::{self, QueueReceiver},
    room::{close, ConnId, OutFrame, RoomCommand, RoomHandle, OUTBOUND_CAPACITY},
    state::AppState,
};
use crate::{
    domain::{rate::TokenBucket, SessionMeta},
    sync::protocol::decode_frame,
};
use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
        ConnectInfo, Path, State,
    },
    response::Response,
};
use futures_util::SinkExt;
use std::{
    future::{poll_fn, Future},
    net::SocketAddr,
    sync::{atomic::Ordering, Arc},
    task::Poll,
    time::Instant,
};

/// Bytes the socket reads at a time. Small on purpose: tungstenite zero-fills its
/// whole read buffer before every read, so each idle connection keeps this much
/// resident memory (10,000 idle connections: 0.7 MiB less than with 256). An
/// edit's frame is a few dozen bytes; big frames (a pasted file) just take more
/// reads.
const READ_BUFFER_BYTES: usize = 128;

/// Why the upgraded socket is closed right away instead of joining a room:
/// a close code and its reason.
struct Refusal(u16, String);

/// What a connection task needs from the server. Idle connections are the
/// server's biggest memory cost, so the task captures only this (not the whole
/// `AppState`) and holds its socket once.
struct ConnectionContext {
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    max_frame_bytes: usize,
    messages_per_second: u32,
    message_burst: u32,
}

pub async fn upgrade(
    ws: WebSocketUpgrade,
    Path(raw_id): Path<String>,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    // Refusals are sent as close codes after the upgrade: a browser cannot read
    // the HTTP status of a failed upgrade, but it can read a close code and reason.
    let admission = admit(&state, &raw_id, peer).await;
    let limits = &state.limits;
    let cx = ConnectionContext {
        hub: state.hub.clone(),
        metrics: state.metrics.clone(),
        max_frame_bytes: limits.max_frame_bytes,
        messages_per_second: limits.messages_per_second,
        message_burst: limits.message_burst,
    };
    ws.max_message_size(limits.max_frame_bytes)
        .max_frame_size(limits.max_frame_bytes)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .on_upgrade(move |mut socket| async move {
            let _task = cx.hub.track_task();
            // The admission (session and IP slot) stays here, borrowed: kept in
            // one place for the connection's life, not copied into each layer.
            let refusal = match &admission {
                // Boxed: the connection's state lives in one allocation sized
                // for what it holds, not in the upgrade future's layout.
                Ok((meta, _slot)) => Box::pin(run_connection(&mut socket, &cx, meta)).await,
                Err(Refusal(code, reason)) => {
                    cx.metrics
                        .ws_connections_rejected
                        .fetch_add(1, Ordering::Relaxed);
                    Some(Refusal(*code, reason.clone()))
                }
            };
            if let Some(Refusal(code, reason)) = refusal {
                Box::pin(close_with(&mut socket, code, &reason)).await;
            }
        })
}

async fn admit(
    state: &AppState,
    raw_id: &str,
    peer: SocketAddr,
) -> Result<(SessionMeta, IpSlot), Refusal> {
    let id = raw_id
        .parse()
        .map_err(|e| Refusal(close::MALFORMED_SESSION_ID, format!("{e}")))?;
    if state.hub.is_shutting_down() {
        return Err(Refusal(close::GOING_AWAY, "server shutting down".into()));
    }
    let info = state
        .sessions
        .lookup(id)
        .await
        .map_err(|_| Refusal(close::INTERNAL_ERROR, "storage failure".into()))?
        .ok_or_else(|| {
            Refusal(
                close::SESSION_NOT_FOUND,
                "session not found or expired".into(),
            )
        })?;
    let limit = state.limits.max_connections_per_ip;
    let slot = state.hub.claim_ip_slot(peer.ip(), limit).ok_or_else(|| {
        tracing::warn!(ip = %peer.ip(), limit, "connection refused: too many from this address");
        Refusal(
            close::TRY_AGAIN_LATER,
            format!("too many connections from this address ({limit})"),
        )
    })?;
    Ok((info.meta, slot))
}

/// How long to wait for the client's answering Close before dropping the socket.
const CLOSE_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Sends a Close with `code` and `reason`, then reads (and discards) until the
/// client answers: dropping the socket with unread data would make the kernel
/// reset the connection, and the client would see 1006 instead of our code.
async fn close_with(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let drain = async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_HANDSHAKE_TIMEOUT, drain).await;
}

/// Joins the session and shuttles frames until either side ends; returns the
/// close code and reason to send, if the server ends it.
async fn run_connection(
    socket: &mut WebSocket,
    cx: &ConnectionContext,
    meta: &SessionMeta,
) -> Option<Refusal> {
    let conn = cx.hub.next_conn_id();
    let (outbound, mut to_client) = queue::bounded(OUTBOUND_CAPACITY);
    let room = match Box::pin(cx.hub.join(meta, conn, outbound)).await {
        Ok(room) => room,
        Err(refused) => {
            cx.metrics
                .ws_connections_rejected
                .fetch_add(1, Ordering::Relaxed);
            return Some(Refusal(refused.code, refused.reason));
        }
    };
    cx.metrics
        .ws_connections_opened
        .fetch_add(1, Ordering::Relaxed);
    tracing::debug!(session = %meta.id, conn, "connection joined");
    let closing = shuttle(socket, cx, meta, conn, &room, &mut to_client).await;
    let _ = room.commands.send(RoomCommand::Leave { conn }).await;
    tracing::debug!(session = %meta.id, conn, "connection left");
    closing
}

async fn shuttle(
    socket: &mut WebSocket,
    cx: &ConnectionContext,
    meta: &SessionMeta,
    conn: ConnId,
    room: &RoomHandle,
    to_client: &mut QueueReceiver<OutFrame>,
) -> Option<Refusal> {
    let mut rate = TokenBucket::new(
        cx.message_burst,
        f64::from(cx.messages_per_second),
        Instant::now(),
    );
    loop {
        tokio::select! {
            // Outgoing first, so a busy client still hears the room promptly.
            biased;
            out = to_client.recv() => match out {
                Some(OutFrame::Binary(bytes)) => {
                    if send_frame(socket, Message::Binary(bytes)).await.is_err() {
                        return None;
                    }
                }
                Some(OutFrame::Close(code, reason)) => return Some(Refusal(code, reason)),
                // The room dropped us (too slow) or went away.
                None => return Some(Refusal(close::TRY_AGAIN_LATER, "connection reset by the server; reconnect".into())),
            },
            incoming = socket.recv() => match incoming {
                None => return None,
                Some(Err(e)) => {
                    let text = e.to_string();
                    if text.contains("too long") || text.contains("too big") || text.contains("Space limit") {
                        return Some(Refusal(close::MESSAGE_TOO_BIG, format!("frame larger than {} bytes", cx.max_frame_bytes)));
                    }
                    return None;
                }
                Some(Ok(Message::Binary(bytes))) => {
                    cx.metrics.ws_messages_received.fetch_add(1, Ordering::Relaxed);
                    if rate.try_take(Instant::now()).is_err() {
                        tracing::warn!(session = %meta.id, conn, "closed: message rate limit");
                        return Some(Refusal(close::POLICY_VIOLATION, "message rate limit exceeded".into()));
                    }
                    let decoded = decode_frame(&bytes);
                    drop(bytes); // not held across the await below
                    match decoded {
                        Ok(messages) => {
                            if room.commands.send(RoomCommand::Frame { conn, messages }).await.is_err() {
                                return Some(Refusal(close::GOING_AWAY, "session closed".into()));
                            }
                        }
                        Err(e) => {
                            cx.metrics.ws_protocol_errors.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(session = %meta.id, conn, error = %e, "closed: malformed frame");
                            return Some(Refusal(close::INVALID_PAYLOAD, format!("malformed frame: {e}")));
                        }
                    }
                }
                Some(Ok(Message::Text(_))) => {
                    cx.metrics.ws_protocol_errors.fetch_add(1, Ordering::Relaxed);
                    return Some(Refusal(close::UNSUPPORTED_DATA, "text frames are not supported; send binary y-websocket messages".into()));
                }
                Some(Ok(Message::Close(_))) => return None,
                Some(Ok(_)) => {} // ping/pong: answered by the library
            },
        }
    }
}

/// Sends one frame. Written against `Sink` directly rather than with
/// `socket.send(..)`, whose future keeps the message twice across its awaits:
/// that made every idle connection's task over 100 bytes bigger.
fn send_frame(
    socket: &mut WebSocket,
    message: Message,
) -> impl Future<Output = Result<(), axum::Error>> + '_ {
    let mut unsent = Some(message);
    poll_fn(move |cx| {
        if let Some(message) = unsent.take() {
            match socket.poll_ready_unpin(cx) {
                Poll::Pending => {
                    unsent = Some(message);
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => socket.start_send_unpin(message)?,
            }
        }
        socket.poll_flush_unpin(cx)
    })
}
