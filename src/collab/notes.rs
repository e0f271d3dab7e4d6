//! The interviewers' notes as the browser keeps them, sans IO: a replica of
//! the notes document (its `notes` text and the `events` the server records,
//! such as a candidate's tab losing focus), synced over `/ws/<id>/notes` with
//! the same protocol as the code. The page feeds it frames and the textarea's
//! value; it answers with frames to send and what to show.

use crate::sync::{
    protocol::{self, decode_frame, ClientMessage, FrameError},
    SessionDoc,
};

/// What the page must do after an input.
#[derive(Debug, Default, PartialEq)]
pub struct NotesEffects {
    /// Frames to send, in order.
    pub send: Vec<Vec<u8>>,
    /// The notes text changed (from someone else): show `text()`.
    pub text_changed: bool,
    /// Events recorded since the last input, oldest first.
    pub new_events: Vec<yrs::Any>,
    /// The first full sync with the server just completed.
    pub synced: bool,
}

pub struct NotesReplica {
    doc: SessionDoc,
    /// Events already reported.
    seen_events: usize,
}

impl NotesReplica {
    pub fn new(client_id: u64) -> Self {
        Self {
            doc: SessionDoc::with_client_id(client_id),
            seen_events: 0,
        }
    }

    /// The connection opened: ask for what we lack.
    pub fn on_open(&self) -> NotesEffects {
        NotesEffects {
            send: vec![protocol::encode_sync_step1(&self.doc.state_vector())],
            ..NotesEffects::default()
        }
    }

    /// A frame from the server.
    pub fn on_frame(&mut self, frame: &[u8]) -> Result<NotesEffects, FrameError> {
        let mut effects = NotesEffects::default();
        let before = self.doc.notes();
        for message in decode_frame(frame)? {
            match message {
                ClientMessage::SyncStep1(remote) => {
                    // What we have and the server lacks (edits made offline).
                    effects
                        .send
                        .push(protocol::encode_sync_step2(&self.doc.diff(&remote)));
                }
                ClientMessage::SyncStep2(update) => {
                    let _ = self.doc.apply_decoded(update.decoded, None);
                    effects.synced = true;
                }
                ClientMessage::Update(update) => {
                    let _ = self.doc.apply_decoded(update.decoded, None);
                }
                _ => {}
            }
        }
        effects.text_changed = self.doc.notes() != before;
        let events = self.doc.events();
        effects.new_events = events.into_iter().skip(self.seen_events).collect();
        self.seen_events += effects.new_events.len();
        Ok(effects)
    }

    /// The textarea now holds `text`.
    pub fn edit(&mut self, text: &str) -> NotesEffects {
        NotesEffects {
            send: self
                .doc
                .edit_notes(text)
                .map(|update| protocol::encode_update(&update))
                .into_iter()
                .collect(),
            ..NotesEffects::default()
        }
    }

    pub fn text(&self) -> String {
        self.doc.notes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Delivers `frames` to `replica` the way the server relays them.
    fn deliver(replica: &mut NotesReplica, frames: &[Vec<u8>]) -> NotesEffects {
        let mut last = NotesEffects::default();
        for frame in frames {
            last = replica.on_frame(frame).unwrap();
        }
        last
    }

    #[test]
    fn two_interviewers_converge_on_their_notes() {
        let mut ivy = NotesReplica::new(1);
        let mut ian = NotesReplica::new(2);
        let typed = ivy.edit("Strong on recursion");
        let seen = deliver(&mut ian, &typed.send);
        assert!(seen.text_changed);
        assert_eq!(ian.text(), "Strong on recursion");
        // Ian fixes a word in the middle, with unicode around it.
        let fixed = ian.edit("Strong ✓ on recursion, 😀");
        deliver(&mut ivy, &fixed.send);
        assert_eq!(ivy.text(), "Strong ✓ on recursion, 😀");
        assert!(
            ivy.edit("Strong ✓ on recursion, 😀").send.is_empty(),
            "no change, nothing sent"
        );
    }

    #[test]
    fn events_recorded_by_the_server_are_reported_once() {
        let server = SessionDoc::new();
        let mut ivy = NotesReplica::new(1);
        let event = yrs::Any::from("blur");
        let update = server.record_events(vec![event.clone()]);
        let first = ivy.on_frame(&protocol::encode_update(&update)).unwrap();
        assert_eq!(first.new_events, vec![event]);
        let typed = ivy.edit("note");
        let again = ivy.on_frame(&typed.send[0]);
        assert!(again.unwrap().new_events.is_empty());
    }
}
