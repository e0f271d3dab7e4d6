//! The WebSocket endpoints `/ws/<session-id>` (the session's document) and
//! `/ws/<session-id>/notes` (the interviewers' notes): decides who may connect
//! and as what (see `access`), upgrades, enforces per-connection
//! limits (frame size, messages per frame, message, byte and sync-request
//! rates, connections per address), pings the client when its room says so,
//! and shuttles frames between the socket and the session's room. A bad frame
//! closes only its own connection, with a close code and a reason.

use super::{
    access::{Credentials, Denied, Role},
    budget::{BudgetRates, ConnectionBudget},
    client_addr::ClientAddr,
    metrics::Metrics,
    queue::QueueReceiver,
    rooms::hub::{Hub, IpSlot},
    rooms::{close, outbound_queue, ConnId, OutFrame, RoomCommand, RoomHandle},
    state::AppState,
};
use crate::{
    domain::{SessionId, SessionMeta},
    sync::{
        protocol::{decode_client_frame, FrameError},
        schema::DocumentKind,
    },
};
use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
        FromRequestParts, Path, RawQuery, State,
    },
    http::{request::Parts, HeaderMap},
    response::{IntoResponse, Response},
    Extension,
};
use futures_util::SinkExt;
use std::{
    future::{poll_fn, Future},
    net::IpAddr,
    pin::pin,
    sync::{atomic::Ordering, Arc},
    task::Poll,
    time::{Duration, Instant},
};

/// How long one frame may take to reach the client's socket before the
/// connection counts as dead (a client that stopped reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

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
    rates: BudgetRates,
    max_frame_bytes: usize,
    max_messages_per_frame: usize,
    max_outbound_bytes: usize,
    pong_timeout: Duration,
    /// Which document the connection syncs (what its updates may hold).
    kind: DocumentKind,
}

/// Where a connection was admitted: the document's record, the role and the
/// address slot it holds.
struct Admission {
    meta: SessionMeta,
    role: Role,
    slot: IpSlot,
}

/// `GET /ws/<id>`: the session's document.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    request: UpgradeRequest,
) -> Response {
    serve(ws, state, request, DocumentKind::Session).await
}

/// `GET /ws/<id>/notes`: the interviewers' notes (the key is required).
pub async fn upgrade_notes(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    request: UpgradeRequest,
) -> Response {
    serve(ws, state, request, DocumentKind::Notes).await
}

/// What an upgrade request brings: the session named in its path, its
/// credentials (query and headers) and the address per-address limits count.
pub struct UpgradeRequest {
    raw_id: String,
    query: Option<String>,
    headers: HeaderMap,
    ip: IpAddr,
}

impl FromRequestParts<AppState> for UpgradeRequest {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Path(raw_id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let RawQuery(query) = RawQuery::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Extension(client) = Extension::<ClientAddr>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            raw_id,
            query,
            headers: parts.headers.clone(),
            ip: client.key(),
        })
    }
}

async fn serve(
    ws: WebSocketUpgrade,
    state: AppState,
    request: UpgradeRequest,
    kind: DocumentKind,
) -> Response {
    // Refusals are sent as close codes after the upgrade: a browser cannot read
    // the HTTP status of a failed upgrade, but it can read a close code and reason.
    let admission = admit(&state, &request, kind).await;
    let limits = &state.limits;
    let cx = ConnectionContext {
        hub: state.hub.clone(),
        metrics: state.metrics.clone(),
        rates: BudgetRates::new(limits),
        max_frame_bytes: limits.max_frame_bytes,
        max_messages_per_frame: limits.max_messages_per_frame,
        max_outbound_bytes: limits.max_outbound_bytes,
        pong_timeout: limits.pong_timeout,
        kind,
    };
    ws.max_message_size(limits.max_frame_bytes)
        .max_frame_size(limits.max_frame_bytes)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .on_upgrade(move |mut socket| async move {
            let _task = cx.hub.track_task();
            let refusal = match admission {
                // Boxed: the connection's state lives in one allocation sized
                // for what it holds, not in the upgrade future's layout.
                Ok(admitted) => Box::pin(run_connection(&mut socket, &cx, admitted)).await,
                Err(refusal) => {
                    cx.metrics
                        .ws_connections_rejected
                        .fetch_add(1, Ordering::Relaxed);
                    Some(refusal)
                }
            };
            if let Some(Refusal(code, reason)) = refusal {
                Box::pin(close_with(&mut socket, code, &reason)).await;
            }
        })
}

/// Boxed: the upgrade future keeps the admission until the connection runs,
/// and a pointer there costs idle connections less than a session record.
async fn admit(
    state: &AppState,
    request: &UpgradeRequest,
    kind: DocumentKind,
) -> Result<Box<Admission>, Refusal> {
    let id = request
        .raw_id
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
    let credentials = Credentials::from_request(id, &request.headers, request.query.as_deref());
    let role = credentials
        .role_in(&info.meta)
        .map_err(|denied| match denied {
            Denied::PasswordRequired => Refusal(
                close::PASSWORD_REQUIRED,
                "this session is protected by a password: unlock it first".into(),
            ),
            Denied::WrongKey => Refusal(close::INTERVIEWER_ONLY, "wrong interviewer key".into()),
        })?;
    let meta = match kind {
        DocumentKind::Session => info.meta,
        DocumentKind::Notes if role != Role::Interviewer => {
            return Err(Refusal(
                close::INTERVIEWER_ONLY,
                "the notes are for interviewers only: connect with the interviewer key".into(),
            ))
        }
        DocumentKind::Notes => state
            .sessions
            .notes_of(&info.meta)
            .await
            .map_err(|_| Refusal(close::INTERNAL_ERROR, "storage failure".into()))?
            .ok_or_else(|| Refusal(close::SESSION_NOT_FOUND, "this session has no notes".into()))?,
    };
    let ip = request.ip;
    let limit = state.limits.max_connections_per_ip;
    let slot = state.hub.claim_ip_slot(ip, limit).ok_or_else(|| {
        tracing::warn!(%ip, limit, "connection refused: too many from this address");
        Refusal(
            close::TRY_AGAIN_LATER,
            format!("too many connections from this address ({limit})"),
        )
    })?;
    Ok(Box::new(Admission { meta, role, slot }))
}

/// How long to wait for the client's answering Close before dropping the socket.
const CLOSE_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Sends a Close with `code` and `reason`, then reads (and discards) until the
/// client answers: dropping the socket with unread data would make the kernel
/// reset the connection, and the client would see 1006 instead of our code.
async fn close_with(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: truncate_reason(reason.to_owned()).into(),
    };
    // A client that stopped reading never takes the Close either.
    let sent = tokio::time::timeout(WRITE_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
    if !matches!(sent, Ok(Ok(()))) {
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
    admitted: Box<Admission>,
) -> Option<Refusal> {
    // The IP slot is held until the connection ends; the session's record only
    // until the room has it (10,000 idle connections would keep 10,000 copies).
    let Admission { meta, role, slot } = *admitted;
    let session = meta.id;
    let conn = cx.hub.next_conn_id();
    let (outbound, mut to_client) = outbound_queue(cx.max_outbound_bytes);
    let join = cx.hub.join(&meta, conn, slot.ip(), role, outbound);
    let joined = Box::pin(join).await;
    drop(meta);
    let room = match joined {
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
    tracing::debug!(%session, conn, "connection joined");
    let closing = shuttle(socket, cx, session, conn, &room, &mut to_client).await;
    let _ = room.commands.send(RoomCommand::Leave { conn }).await;
    tracing::debug!(%session, conn, "connection left");
    drop(slot);
    closing
}

async fn shuttle(
    socket: &mut WebSocket,
    cx: &ConnectionContext,
    session: SessionId,
    conn: ConnId,
    room: &RoomHandle,
    to_client: &mut QueueReceiver<OutFrame>,
) -> Option<Refusal> {
    let mut budget = ConnectionBudget::new(&cx.rates, Instant::now());
    // When a ping went unanswered since: anything from the client answers it.
    let mut unanswered_ping: Option<Instant> = None;
    loop {
        tokio::select! {
            // Outgoing first, so a busy client still hears the room promptly.
            biased;
            out = to_client.recv() => match out {
                Some(OutFrame::Binary(bytes)) => {
                    if send_within(socket, Message::Binary(bytes)).await.is_err() {
                        return None;
                    }
                }
                Some(OutFrame::Ping) => match unanswered_ping {
                    Some(since) if since.elapsed() >= cx.pong_timeout => {
                        tracing::debug!(session = %session, conn, "closed: no pong");
                        return Some(Refusal(close::TIMED_OUT, format!("no answer to ping within {} s", cx.pong_timeout.as_secs())));
                    }
                    Some(_) => {}
                    None => {
                        if send_within(socket, Message::Ping(Default::default())).await.is_err() {
                            return None;
                        }
                        unanswered_ping = Some(Instant::now());
                    }
                },
                Some(OutFrame::Close(code, reason)) => return Some(Refusal(code, reason)),
                // The room went away.
                None => return Some(Refusal(close::TRY_AGAIN_LATER, "connection reset by the server; reconnect".into())),
            },
            incoming = socket.recv() => {
                unanswered_ping = None;
                match incoming {
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
                        let now = Instant::now();
                        if let Err(overspent) = budget.charge_bytes(&cx.rates, bytes.len(), now) {
                            tracing::warn!(session = %session, conn, %overspent, "closed");
                            return Some(Refusal(close::POLICY_VIOLATION, overspent.to_string()));
                        }
                        let decoded = decode_client_frame(&bytes, cx.max_messages_per_frame, cx.kind);
                        drop(bytes); // not held across the await below
                        let messages = match decoded {
                            Ok(messages) => messages,
                            Err(e) => {
                                cx.metrics.ws_protocol_errors.fetch_add(1, Ordering::Relaxed);
                                tracing::warn!(session = %session, conn, error = %e, "closed: refused frame");
                                let code = match e {
                                    FrameError::TooManyMessages(_) => close::POLICY_VIOLATION,
                                    FrameError::Unsupported(_) => close::UNSUPPORTED_CONTENT,
                                    _ => close::INVALID_PAYLOAD,
                                };
                                return Some(Refusal(code, refusal_reason(&e)));
                            }
                        };
                        if let Err(overspent) = budget.charge_messages(&cx.rates, &messages, now) {
                            tracing::warn!(session = %session, conn, %overspent, "closed");
                            return Some(Refusal(close::POLICY_VIOLATION, overspent.to_string()));
                        }
                        if room.commands.send(RoomCommand::Frame { conn, messages }).await.is_err() {
                            return Some(Refusal(close::GOING_AWAY, "session closed".into()));
                        }
                    }
                    Some(Ok(Message::Text(_))) => {
                        cx.metrics.ws_protocol_errors.fetch_add(1, Ordering::Relaxed);
                        return Some(Refusal(close::UNSUPPORTED_DATA, "text frames are not supported; send binary y-websocket messages".into()));
                    }
                    Some(Ok(Message::Close(_))) => return None,
                    Some(Ok(_)) => {} // ping/pong: answered by the library
                }
            },
        }
    }
}

/// A close reason for a refused frame (close reasons are at most 123 bytes).
fn refusal_reason(error: &FrameError) -> String {
    let text = match error {
        FrameError::TooManyMessages(_) | FrameError::Unsupported(_) => error.to_string(),
        other => format!("malformed frame: {other}"),
    };
    truncate_reason(text)
}

/// Cuts a close reason to the 123 bytes a close frame can carry.
fn truncate_reason(mut text: String) -> String {
    const MAX: usize = 123;
    if text.len() > MAX {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Sends one frame, giving up after [`WRITE_TIMEOUT`]. Most sends complete at
/// once; only one that waits on a full socket gets a (boxed) timer, so idle
/// connections carry none.
async fn send_within(socket: &mut WebSocket, message: Message) -> Result<(), axum::Error> {
    let mut sending = pin!(send_frame(socket, message));
    let first = poll_fn(|cx| Poll::Ready(sending.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(result) => result,
        Poll::Pending => match Box::pin(tokio::time::timeout(WRITE_TIMEOUT, sending)).await {
            Ok(result) => result,
            Err(_) => Err(axum::Error::new("the client stopped reading")),
        },
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
