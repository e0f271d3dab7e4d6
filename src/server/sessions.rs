//! The session service: creating, looking up and expiring sessions, and the
//! interviewer's operations on one (password, end and reopen, delete, events).
//! Both the REST API and the pages' server functions go through it, so the
//! rules (rate limits, default language, expiry, secrets) live in one place.

use super::{
    access::{
        guesses::GuessLimiter,
        secrets::{self, PasswordError},
    },
    blocking::blocking,
    rooms::{hub::Hub, RecordChange, RoomCommand},
};
use super::{
    metrics::Metrics,
    rate_limit::{IpRateLimiter, RateLimiter},
};
use crate::{
    domain::{time::now_ms, Language, Limits, SessionId, SessionMeta},
    storage::{LoggedUpdate, Storage, StorageError},
    sync::SessionDoc,
};
use std::{
    net::IpAddr,
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

/// Why a session could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("too many sessions created from this address")]
    RateLimited(Duration),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Focus and paste reports one address may send per minute (a page sends one
/// per focus change or large paste).
pub const EVENTS_PER_IP_PER_MINUTE: u32 = 120;
/// Focus and paste reports one session takes per minute from everyone: many
/// addresses together cannot flood an interviewer's record either.
pub const EVENTS_PER_SESSION_PER_MINUTE: u32 = 60;

/// A session just created, with its interviewer key (handed out once, never
/// stored).
#[derive(Clone, Debug)]
pub struct Created {
    pub meta: SessionMeta,
    pub interviewer_key: String,
}

/// Why an unlock attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    #[error("too many wrong passwords; try again later")]
    RateLimited(Duration),
    #[error("wrong password")]
    WrongPassword,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A session as the API shows it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub meta: SessionMeta,
    /// Connections open to the session now.
    pub users: usize,
}

pub struct SessionService {
    storage: Arc<dyn Storage>,
    hub: Arc<Hub>,
    limits: Limits,
    create_limiter: IpRateLimiter,
    guesses: GuessLimiter,
    /// Focus and paste reports per address.
    event_limiter: IpRateLimiter,
    /// Focus and paste reports per session.
    session_event_limiter: RateLimiter<SessionId>,
    metrics: Arc<Metrics>,
}

impl SessionService {
    pub fn new(
        storage: Arc<dyn Storage>,
        hub: Arc<Hub>,
        limits: Limits,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            create_limiter: IpRateLimiter::per_minute(limits.sessions_per_ip_per_minute),
            guesses: GuessLimiter::default(),
            event_limiter: IpRateLimiter::per_minute(EVENTS_PER_IP_PER_MINUTE),
            session_event_limiter: RateLimiter::per_minute(EVENTS_PER_SESSION_PER_MINUTE),
            storage,
            hub,
            limits,
            metrics,
        }
    }

    /// Creates a session for a client at `ip`, subject to the per-IP rate
    /// limit: with an interviewer key, its notes document, and a password if
    /// one is given (empty means none).
    pub async fn create(
        &self,
        ip: IpAddr,
        language: Language,
        password: Option<String>,
    ) -> Result<Created, CreateError> {
        let password = password.filter(|p| !p.is_empty());
        if let Some(password) = &password {
            secrets::validate_password(password)?;
        }
        self.create_limiter
            .check(ip, Instant::now())
            .map_err(CreateError::RateLimited)?;
        let now = now_ms();
        let interviewer_key = secrets::new_secret();
        let mut meta = SessionMeta::new(SessionId::new_random(), language, now);
        let mut notes = SessionMeta::new(SessionId::new_random(), language, now);
        notes.notes_of = Some(meta.id);
        meta.notes_id = Some(notes.id);
        meta.interviewer_key_hash = Some(secrets::key_hash(&interviewer_key));
        if let Some(password) = password {
            meta.password_hash = Some(hash_off_thread(password).await?);
            meta.unlock_token = Some(secrets::new_secret());
        }
        let storage = self.storage.clone();
        let record = meta.clone();
        blocking(move || {
            // The notes first: a session never points at notes that do not exist.
            storage.insert_session(&notes)?;
            storage.insert_session(&record)
        })
        .await?;
        self.metrics
            .sessions_created
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(session = %meta.id, language = %meta.language, %ip, password = meta.password_required(), "session created");
        Ok(Created {
            meta,
            interviewer_key,
        })
    }

    /// Sets (`Some`) or clears the session's password. A new password comes
    /// with a new unlock token, so browsers unlocked before must unlock again.
    /// False if there is no such session.
    pub async fn set_password(
        &self,
        id: SessionId,
        password: Option<String>,
    ) -> Result<bool, CreateError> {
        let hash = match password {
            Some(password) => Some(hash_off_thread(password).await?),
            None => None,
        };
        let token = hash.as_ref().map(|_| secrets::new_secret());
        let storage = self.storage.clone();
        let changed = blocking(move || {
            storage.change_session(id, &mut |meta| {
                meta.password_hash = hash.clone();
                meta.unlock_token = token.clone();
            })
        })
        .await?;
        tracing::info!(session = %id, set = changed, "session password changed");
        Ok(changed)
    }

    /// Checks a password guess from `ip`; the unlock token on success (`None`
    /// when the session has no password).
    pub async fn unlock(
        &self,
        meta: &SessionMeta,
        ip: IpAddr,
        password: String,
    ) -> Result<Option<String>, UnlockError> {
        let (Some(hash), Some(token)) = (meta.password_hash.clone(), meta.unlock_token.clone())
        else {
            return Ok(None);
        };
        self.guesses
            .admit(ip, meta.id, Instant::now())
            .map_err(UnlockError::RateLimited)?;
        let matches =
            tokio::task::spawn_blocking(move || secrets::password_matches(&password, &hash))
                .await
                .unwrap_or(false);
        if !matches {
            self.guesses.wrong(ip, meta.id, Instant::now());
            tracing::warn!(session = %meta.id, %ip, "wrong session password");
            return Err(UnlockError::WrongPassword);
        }
        Ok(Some(token))
    }

    /// Ends (`true`) or reopens the interview: stored first, then the room
    /// (if loaded) writes the flag into the document and refuses or takes edits.
    pub async fn set_ended(&self, id: SessionId, ended: bool) -> Result<bool, StorageError> {
        let storage = self.storage.clone();
        let changed =
            blocking(move || storage.change_session(id, &mut |meta| meta.ended = ended)).await?;
        if changed {
            let change = if ended {
                RecordChange::Ended
            } else {
                RecordChange::Reopened
            };
            self.announce(id, change).await;
            tracing::info!(session = %id, ended, "interview ended or reopened");
        }
        Ok(changed)
    }

    /// Deletes the session and its notes now; their connections close with 4404.
    pub async fn delete(&self, meta: &SessionMeta) -> Result<bool, StorageError> {
        let storage = self.storage.clone();
        let (id, notes) = (meta.id, meta.notes_id);
        let existed = blocking(move || {
            let existed = storage.delete_session(id)?;
            if let Some(notes) = notes {
                storage.delete_session(notes)?;
            }
            Ok(existed)
        })
        .await?;
        self.announce(id, RecordChange::Deleted).await;
        if let Some(notes) = notes {
            self.announce(notes, RecordChange::Deleted).await;
        }
        tracing::info!(session = %id, "session deleted by an interviewer");
        Ok(existed)
    }

    /// The interviewers' notes document of a session (not subject to expiry
    /// on its own: it goes with its session).
    pub async fn notes_of(&self, meta: &SessionMeta) -> Result<Option<SessionMeta>, StorageError> {
        let Some(notes) = meta.notes_id else {
            return Ok(None);
        };
        let storage = self.storage.clone();
        blocking(move || storage.session(notes)).await
    }

    /// Admits a focus or paste report from `ip` into the session `id`, or
    /// says how long to wait.
    pub fn admit_event(&self, ip: IpAddr, id: SessionId) -> Result<(), Duration> {
        let now = Instant::now();
        self.event_limiter.check(ip, now)?;
        self.session_event_limiter.check(id, now)
    }

    /// Records an event (a JSON object) in the session's notes document, where
    /// interviewers see it live.
    pub async fn record_event(
        &self,
        meta: &SessionMeta,
        event: yrs::Any,
    ) -> Result<(), StorageError> {
        if let Some(notes) = self.notes_of(meta).await? {
            self.hub
                .tell(&notes, RoomCommand::Record(vec![event]))
                .await;
        }
        Ok(())
    }

    /// The session if it exists and has not expired.
    pub async fn lookup(&self, id: SessionId) -> Result<Option<SessionInfo>, StorageError> {
        let storage = self.storage.clone();
        let Some(mut meta) = blocking(move || storage.session(id)).await? else {
            return Ok(None);
        };
        if meta.notes_of.is_some() {
            // A notes document is reachable only through its session.
            return Ok(None);
        }
        let elsewhere = self.connections_elsewhere(id).await.unwrap_or(0);
        let users = self.hub.connection_count_of(id) + elsewhere;
        // A session someone is connected to is alive whatever its stored activity says.
        if users == 0 && meta.is_expired(now_ms(), self.ttl_ms()) {
            return Ok(None);
        }
        if let Some(language) = self.hub.language_of(id) {
            meta.language = language;
        }
        if let Some(last) = self.hub.last_activity_of(id) {
            meta.record_activity(last);
        }
        Ok(Some(SessionInfo { meta, users }))
    }

    /// Connections other instances have to session `id` (cluster mode; 0
    /// without), or None if that cannot be known now.
    async fn connections_elsewhere(&self, id: SessionId) -> Option<usize> {
        let Some(peers) = self.hub.peers().cloned() else {
            return Some(0);
        };
        match blocking(move || peers.connections_elsewhere(id)).await {
            Ok(count) => Some(count),
            Err(e) => {
                tracing::warn!(session = %id, error = %e, "other instances' connections unknown");
                None
            }
        }
    }

    /// Tells the room that has the session open here, and the other
    /// instances (cluster mode), about a change to the session's record
    /// (already stored). A failure to tell the others is logged: their rooms
    /// still act on the ended flag when it reaches them, and on a deletion
    /// when a store fails.
    async fn announce(&self, id: SessionId, change: RecordChange) {
        self.hub.tell_loaded(id, change.command()).await;
        let Some(peers) = self.hub.peers().cloned() else {
            return;
        };
        if let Err(e) = blocking(move || peers.publish_change(id, change)).await {
            tracing::warn!(session = %id, ?change, error = %e, "other instances were not told of a record change");
        }
    }

    /// Deletes every session inactive for longer than the TTL that nobody is
    /// connected to. Returns how many were deleted.
    pub async fn expire_inactive(&self) -> Result<usize, StorageError> {
        let cutoff = now_ms().saturating_sub(self.ttl_ms());
        let storage = self.storage.clone();
        let candidates = blocking(move || storage.sessions_inactive_since(cutoff)).await?;
        let mut deleted = 0;
        for id in candidates {
            // Unknown counts (Redis unreachable) spare the session for now.
            if self.hub.is_loaded(id) || self.connections_elsewhere(id).await != Some(0) {
                continue;
            }
            let storage = self.storage.clone();
            let expired = blocking(move || {
                let Some(meta) = storage.session(id)? else {
                    // Gone already (Redis expired its keys): clear what still
                    // lists it, so indexes do not grow with every expiry.
                    storage.delete_session(id)?;
                    return Ok(false);
                };
                if let Some(parent) = meta.notes_of {
                    // Notes go with their session, whatever their own activity.
                    if storage.session(parent)?.is_some() {
                        return Ok(false);
                    }
                }
                if let Some(notes) = meta.notes_id {
                    storage.delete_session(notes)?;
                }
                storage.delete_session(id)
            })
            .await?;
            if expired {
                deleted += 1;
                self.metrics
                    .sessions_expired
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(session = %id, "session expired and deleted");
            }
        }
        Ok(deleted)
    }

    /// A document as stored (everything any client has seen is stored).
    pub async fn stored_document(&self, id: SessionId) -> Result<SessionDoc, StorageError> {
        let storage = self.storage.clone();
        let stored = blocking(move || storage.load_document(id)).await?;
        Ok(SessionDoc::from_updates(stored.updates_in_order()).0)
    }

    /// The session's whole update log, oldest first (for playback).
    pub async fn update_log(&self, id: SessionId) -> Result<Vec<LoggedUpdate>, StorageError> {
        let storage = self.storage.clone();
        blocking(move || storage.update_log(id)).await
    }

    /// The session's code as stored (everything any client has seen is stored).
    pub async fn stored_code(&self, id: SessionId) -> Result<String, StorageError> {
        Ok(self.stored_document(id).await?.code())
    }

    /// Sessions in storage.
    pub async fn stored_count(&self) -> Result<u64, StorageError> {
        let storage = self.storage.clone();
        blocking(move || storage.session_count()).await
    }

    fn ttl_ms(&self) -> u64 {
        self.limits.session_ttl.as_millis() as u64
    }
}

/// Hashes a password on the blocking pool (argon2 takes tens of milliseconds).
async fn hash_off_thread(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await
        .unwrap_or(Err(PasswordError::Hashing))
}
