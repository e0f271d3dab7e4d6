//! The WebSocket endpoints `/ws/<session-id>` (the session's document) and
//! `/ws/<session-id>/notes` (the interviewers' notes): decides who may connect
//! and as what (see `access`), upgrades, enforces per-connection
//! limits (frame size, messages per frame, message, byte and sync-request
//! rates, connections per address), pings the client when its room says so,
//! and shuttles frames between the socket and the session's room (which may
//! also write relayed frames into the socket itself: see `shared_socket`). A bad frame
//! closes only its own connection, with a close code and a reason.

use super::{
    access::{Credentials, Denied, Role},
    budget::{BudgetRates, ConnectionBudget},
    client_addr::ClientAddr,
    metrics::Metrics,
    queue::QueueReceiver,
    rooms::hub::{Hub, IpSlot},
    rooms::{close, outbound_queue, ConnId, OutFrame, RoomCommand, RoomHandle},
    shared_socket::SharedSocket,
    state::AppState,
};
use crate::{
    domain::{Limits, SessionId, SessionMeta},
    sync::{
        protocol::{decode_client_frame, ClientMessage, FrameError},
        schema::DocumentKind,
    },
};
use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocketUpgrade},
        FromRequestParts, Path, RawQuery, State,
    },
    http::{request::Parts, HeaderMap},
    response::{IntoResponse, Response},
    Extension,
};
use bytes::Bytes;
use std::{
    future::Future,
    net::IpAddr,
    pin::Pin,
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
    /// The hub also holds the server's limits and metrics.
    hub: Arc<Hub>,
    /// Which document the connection syncs (what its updates may hold).
    kind: DocumentKind,
}

impl ConnectionContext {
    fn limits(&self) -> &Limits {
        self.hub.limits()
    }

    fn metrics(&self) -> &Metrics {
        self.hub.metrics()
    }
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
        kind,
    };
    // axum's task for the socket is sized for axum's own upgrade steps, which
    // hold the socket; once the socket is shared (see `shared_socket`), the
    // connection's future fits in the space they leave: it runs inline, not
    // boxed (10,000 idle connections: 3.6 MiB less). Until then it waits in
    // one box.
    let pending = Box::new(Pending { cx, admission });
    ws.max_message_size(limits.max_frame_bytes)
        .max_frame_size(limits.max_frame_bytes)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .on_upgrade(move |socket| {
            // Shared before the connection's future is made: a future that
            // took the socket itself would keep room for it (368 bytes) for as
            // long as the connection lives, beside the shared copy.
            let socket = Arc::new(SharedSocket::new(socket));
            async move { connect(&socket, pending).await }
        })
}

/// What an upgraded socket starts with: the connection's context and whether
/// it was admitted.
struct Pending {
    cx: ConnectionContext,
    admission: Result<Box<Admission>, Refusal>,
}

/// Runs an upgraded connection, or refuses it, and closes it with the code
/// and reason the server ends it with, if any.
async fn connect(socket: &Arc<SharedSocket>, pending: Box<Pending>) {
    // Unboxed in a call of its own, so the box is freed now rather than when
    // the connection ends.
    let Pending { cx, admission } = unbox(pending);
    let _task = cx.hub.track_task();
    let refusal = match admission {
        Ok(admitted) => run_connection(socket, &cx, admitted).await,
        Err(refusal) => {
            cx.metrics()
                .ws_connections_rejected
                .fetch_add(1, Ordering::Relaxed);
            Some(refusal)
        }
    };
    if let Some(Refusal(code, reason)) = refusal {
        Box::pin(close_with(socket, code, &reason)).await;
    }
}

/// Moves a value out of its box and frees the box (taking a box is the point).
#[allow(clippy::boxed_local)]
fn unbox<T>(boxed: Box<T>) -> T {
    *boxed
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
async fn close_with(socket: &SharedSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: truncate_reason(reason.to_owned()).into(),
    };
    // A client that stopped reading never takes the Close either.
    if SendWithin::new(socket, Some(Message::Close(Some(frame))))
        .await
        .is_err()
    {
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
    socket: &Arc<SharedSocket>,
    cx: &ConnectionContext,
    admitted: Box<Admission>,
) -> Option<Refusal> {
    // The IP slot is held until the connection ends; the session's record only
    // until the room has it (10,000 idle connections would keep 10,000 copies).
    // An async fn keeps its arguments for as long as it runs: so the admission
    // comes boxed, and is unboxed (the box freed) at once.
    let Admission { meta, role, slot } = unbox(admitted);
    let session = meta.id;
    let conn = cx.hub.next_conn_id();
    let joined = Box::pin(join_room(cx, socket, meta, conn, slot.ip(), role)).await;
    let (room, to_client) = match joined {
        Ok(joined) => joined,
        Err(refusal) => return Some(refusal),
    };
    cx.metrics()
        .ws_connections_opened
        .fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%session, conn, "connection joined");
    let rates = BudgetRates::new(cx.limits());
    let mut link = Link {
        cx,
        session,
        conn,
        room,
        to_client,
        rates,
        budget: ConnectionBudget::new(&rates, Instant::now()),
        unanswered_ping: None,
    };
    let closing = shuttle(socket, &mut link).await;
    // From here the room queues, and nothing queued is sent.
    socket.retire();
    let _ = link.room.commands.send(RoomCommand::Leave { conn }).await;
    tracing::debug!(%session, conn, "connection left");
    drop(slot);
    closing
}

/// Joins the session's room; returns it and the connection's outgoing queue.
/// Its own (boxed) future, so the session's record is held only while joining.
async fn join_room(
    cx: &ConnectionContext,
    socket: &Arc<SharedSocket>,
    meta: SessionMeta,
    conn: ConnId,
    ip: IpAddr,
    role: Role,
) -> Result<(RoomHandle, QueueReceiver<OutFrame>), Refusal> {
    let (outbound, to_client) =
        outbound_queue(cx.limits().max_outbound_bytes, Some(socket.clone()));
    match cx.hub.join(&meta, conn, ip, role, outbound).await {
        Ok(room) => Ok((room, to_client)),
        Err(refused) => {
            cx.metrics()
                .ws_connections_rejected
                .fetch_add(1, Ordering::Relaxed);
            Err(Refusal(refused.code, refused.reason))
        }
    }
}

/// A joined connection: what the loop between its socket and its room keeps.
/// One place for all of it, so the loop's future holds a pointer rather than
/// a copy of each (an async fn keeps every argument for as long as it runs).
struct Link<'a> {
    cx: &'a ConnectionContext,
    session: SessionId,
    conn: ConnId,
    room: RoomHandle,
    to_client: QueueReceiver<OutFrame>,
    rates: BudgetRates,
    budget: ConnectionBudget,
    /// When a ping went unanswered since: anything from the client answers it.
    unanswered_ping: Option<Instant>,
}

/// What the loop does next, decided without awaiting anything.
enum Step {
    /// Send this, or (`None`) finish the write the room left half done.
    Send(Option<Message>),
    Forward(Vec<ClientMessage>),
    Continue,
    /// The connection ends, closed by the server (with a code) or not.
    End(Option<Refusal>),
}

/// Shuttles frames between the socket and the room until either side ends.
async fn shuttle(socket: &SharedSocket, link: &mut Link<'_>) -> Option<Refusal> {
    loop {
        let step = tokio::select! {
            // Outgoing first, so a busy client still hears the room promptly.
            biased;
            out = link.to_client.recv() => link.outgoing(out),
            incoming = socket.recv() => link.incoming(incoming),
        };
        match step {
            Step::Send(message) => {
                if SendWithin::new(socket, message).await.is_err() {
                    return None;
                }
            }
            Step::Forward(messages) => {
                let frame = RoomCommand::Frame {
                    conn: link.conn,
                    messages,
                };
                if link.room.commands.send(frame).await.is_err() {
                    return Some(Refusal(close::GOING_AWAY, "session closed".into()));
                }
            }
            Step::Continue => {}
            Step::End(closing) => return closing,
        }
    }
}

impl Link<'_> {
    /// What to do with the room's next frame for the client (`None`: the room
    /// went away).
    fn outgoing(&mut self, out: Option<OutFrame>) -> Step {
        match out {
            Some(OutFrame::Binary(bytes)) => Step::Send(Some(Message::Binary(bytes))),
            Some(OutFrame::Flush) => Step::Send(None),
            Some(OutFrame::Ping) => match self.unanswered_ping {
                Some(since) if since.elapsed() >= self.cx.limits().pong_timeout => {
                    tracing::debug!(session = %self.session, conn = self.conn, "closed: no pong");
                    let within = self.cx.limits().pong_timeout.as_secs();
                    Step::End(Some(Refusal(
                        close::TIMED_OUT,
                        format!("no answer to ping within {within} s"),
                    )))
                }
                Some(_) => Step::Continue,
                None => {
                    self.unanswered_ping = Some(Instant::now());
                    Step::Send(Some(Message::Ping(Default::default())))
                }
            },
            Some(OutFrame::Close(code, reason)) => Step::End(Some(Refusal(code, reason))),
            None => Step::End(Some(Refusal(
                close::TRY_AGAIN_LATER,
                "connection reset by the server; reconnect".into(),
            ))),
        }
    }

    /// What to do with what the client sent (`None`: it went away).
    fn incoming(&mut self, incoming: Option<Result<Message, axum::Error>>) -> Step {
        self.unanswered_ping = None;
        match incoming {
            None | Some(Ok(Message::Close(_))) => Step::End(None),
            Some(Err(e)) => {
                let text = e.to_string();
                if text.contains("too long")
                    || text.contains("too big")
                    || text.contains("Space limit")
                {
                    let limit = self.cx.limits().max_frame_bytes;
                    return Step::End(Some(Refusal(
                        close::MESSAGE_TOO_BIG,
                        format!("frame larger than {limit} bytes"),
                    )));
                }
                Step::End(None)
            }
            Some(Ok(Message::Binary(bytes))) => match self.take_frame(bytes) {
                Ok(messages) => Step::Forward(messages),
                Err(refusal) => Step::End(Some(refusal)),
            },
            Some(Ok(Message::Text(_))) => {
                self.cx
                    .metrics()
                    .ws_protocol_errors
                    .fetch_add(1, Ordering::Relaxed);
                Step::End(Some(Refusal(
                    close::UNSUPPORTED_DATA,
                    "text frames are not supported; send binary y-websocket messages".into(),
                )))
            }
            Some(Ok(_)) => Step::Continue, // ping/pong: answered by the library
        }
    }

    /// Charges a binary frame from the client to its budget and decodes it:
    /// the messages to hand to the room, or why the connection is closed.
    fn take_frame(&mut self, bytes: Bytes) -> Result<Vec<ClientMessage>, Refusal> {
        let Self {
            cx,
            session,
            conn,
            rates,
            budget,
            ..
        } = self;
        cx.metrics()
            .ws_messages_received
            .fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        if let Err(overspent) = budget.charge_bytes(rates, bytes.len(), now) {
            tracing::warn!(session = %session, conn, %overspent, "closed");
            return Err(Refusal(close::POLICY_VIOLATION, overspent.to_string()));
        }
        let messages = decode_client_frame(&bytes, cx.limits().max_messages_per_frame, cx.kind)
            .map_err(|e| {
                cx.metrics()
                    .ws_protocol_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(session = %session, conn, error = %e, "closed: refused frame");
                let code = match e {
                    FrameError::TooManyMessages(_) => close::POLICY_VIOLATION,
                    FrameError::Unsupported(_) => close::UNSUPPORTED_CONTENT,
                    _ => close::INVALID_PAYLOAD,
                };
                Refusal(code, refusal_reason(&e))
            })?;
        if let Err(overspent) = budget.charge_messages(rates, &messages, now) {
            tracing::warn!(session = %session, conn, %overspent, "closed");
            return Err(Refusal(close::POLICY_VIOLATION, overspent.to_string()));
        }
        Ok(messages)
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

/// Sends one frame (or finishes the write the room left half done), giving up
/// after [`WRITE_TIMEOUT`]. A future of its own rather than an async fn, to
/// stay small inside every connection's task: most sends complete at once, and
/// only one that waits on a full socket gets a (boxed) timer, so idle
/// connections carry none.
struct SendWithin<'a> {
    socket: &'a SharedSocket,
    unsent: Option<Message>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<'a> SendWithin<'a> {
    fn new(socket: &'a SharedSocket, message: Option<Message>) -> Self {
        Self {
            socket,
            unsent: message,
            deadline: None,
        }
    }
}

impl Future for SendWithin<'_> {
    type Output = Result<(), axum::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(result) = this.socket.poll_send(&mut this.unsent, cx) {
            return Poll::Ready(result);
        }
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_TIMEOUT)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(axum::Error::new("the client stopped reading"))),
            Poll::Pending => Poll::Pending,
        }
    }
}
