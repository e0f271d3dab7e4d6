//! Playback of a session's history, sans IO. [`Timeline::build`] unpacks the
//! stored updates (format in `server::history`), replays them once through
//! yrs, and keeps when each one was stored, who made it, whether it touched
//! the code, the runs and language changes among them, and a checkpoint of
//! the whole document (its encoded state) every [`CHECKPOINT_EVERY`] updates.
//! The code at any instant is a checkpoint plus at most that many updates, so
//! seeking costs the same anywhere in a long session; who wrote each part of
//! it comes from the document itself (every character's item names the
//! client that inserted it).
//!
//! (Asking yrs for each update's text delta instead costs a walk from the
//! start of the text per update: measured at half a second for 20,000
//! updates natively, several times that in the browser.)

use crate::{
    domain::{run::RunRecord, Language},
    sync::{document::META_LANGUAGE, SessionDoc},
};
use std::{
    ops::Range,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};
use yrs::{
    types::{text::YChange, Change},
    Observable, Out, ReadTxn, Snapshot, StateVector, Text, Transact,
};

/// Updates between two checkpoints of the whole document.
pub const CHECKPOINT_EVERY: usize = 256;

/// One stored update as the history hands it over: where its bytes are in
/// the packed history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedRecord {
    pub at_ms: u64,
    pub author: u64,
    pub update: Range<usize>,
}

/// Why a history could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the history is damaged: {0}")]
pub struct HistoryError(String);

/// Splits the packed history into its records.
pub fn unpack(packed: &[u8]) -> Result<Vec<PackedRecord>, HistoryError> {
    let mut records = Vec::new();
    let mut at_ms = 0u64;
    let mut rest = packed;
    while !rest.is_empty() {
        let delta = read_varuint(&mut rest)?;
        at_ms = at_ms.saturating_add(delta);
        let author = read_varuint(&mut rest)?;
        let len = usize::try_from(read_varuint(&mut rest)?)
            .map_err(|_| HistoryError("record too long".into()))?;
        if rest.len() < len {
            return Err(HistoryError(format!(
                "record {} is truncated",
                records.len() + 1
            )));
        }
        let offset = packed.len() - rest.len();
        rest = &rest[len..];
        records.push(PackedRecord {
            at_ms,
            author,
            update: offset..offset + len,
        });
    }
    Ok(records)
}

fn read_varuint(bytes: &mut &[u8]) -> Result<u64, HistoryError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let Some((&byte, rest)) = bytes.split_first() else {
            return Err(HistoryError("a number is truncated".into()));
        };
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(HistoryError("a number is too long".into()))
}

/// What one stored update was.
#[derive(Clone, Debug, PartialEq)]
struct Step {
    at_ms: u64,
    author: u64,
    update: Range<usize>,
    changed_code: bool,
}

/// Something worth a mark on the timeline that the updates themselves show.
#[derive(Clone, Debug, PartialEq)]
pub enum DocumentMark {
    /// A run was recorded (with its output).
    Run(RunRecord),
    /// The language was switched to this one.
    Language(Language),
}

/// A session's history, ready to show at any instant.
pub struct Timeline {
    packed: Vec<u8>,
    steps: Vec<Step>,
    /// `checkpoints[k]`: the document's state after `k * CHECKPOINT_EVERY` steps.
    checkpoints: Vec<Vec<u8>>,
    /// Everyone who changed the code, in order of their first change.
    authors: Vec<u64>,
    /// Marks the updates make: (index of the step, mark).
    marks: Vec<(usize, DocumentMark)>,
    /// Where the language changed: (index of the step, the new language).
    languages: Vec<(usize, Language)>,
}

/// Builds a [`Timeline`] a slice at a time, so a page can keep doing other
/// work (loading its editor) while a long history replays.
pub struct TimelineBuilder {
    records: std::vec::IntoIter<PackedRecord>,
    done: usize,
    doc: SessionDoc,
    code_changed: Arc<AtomicBool>,
    language_changed: Arc<AtomicBool>,
    runs: Arc<Mutex<Vec<RunRecord>>>,
    timeline: Timeline,
}

impl TimelineBuilder {
    pub fn new(packed: Vec<u8>) -> Result<Self, HistoryError> {
        let records = unpack(&packed)?;
        let doc = SessionDoc::new();
        let code_changed = Arc::new(AtomicBool::new(false));
        let language_changed = Arc::new(AtomicBool::new(false));
        let runs: Arc<Mutex<Vec<RunRecord>>> = Arc::default();
        {
            // Only flags for the code: its delta is what costs (module docs).
            let flag = code_changed.clone();
            doc.code_ref().observe("playback", move |_, _| {
                flag.store(true, Ordering::Relaxed);
            });
            let sink = runs.clone();
            doc.runs_ref().observe("playback", move |txn, event| {
                for change in event.delta(txn) {
                    if let Change::Added(values) = change {
                        lock(&sink).extend(values.iter().filter_map(run_of));
                    }
                }
            });
            let flag = language_changed.clone();
            doc.meta_ref().observe("playback", move |txn, event| {
                if event.keys(txn).contains_key(META_LANGUAGE) {
                    flag.store(true, Ordering::Relaxed);
                }
            });
        }
        Ok(Self {
            timeline: Timeline {
                steps: Vec::with_capacity(records.len()),
                checkpoints: vec![Vec::new()],
                authors: Vec::new(),
                marks: Vec::new(),
                languages: Vec::new(),
                packed,
            },
            records: records.into_iter(),
            done: 0,
            doc,
            code_changed,
            language_changed,
            runs,
        })
    }

    /// Replays up to `steps` more records; true once all are replayed.
    pub fn advance(&mut self, steps: usize) -> bool {
        let Self {
            records,
            done,
            doc,
            code_changed,
            language_changed,
            runs,
            timeline,
        } = self;
        for record in records.by_ref().take(steps) {
            let index = *done;
            *done += 1;
            // A record that does not decode or apply changes nothing here,
            // as on the server (it skipped it the same way).
            let _ = doc.apply(&timeline.packed[record.update.clone()]);
            let changed_code = code_changed.swap(false, Ordering::Relaxed);
            if changed_code && record.author != 0 && !timeline.authors.contains(&record.author) {
                timeline.authors.push(record.author);
            }
            for run in std::mem::take(&mut *lock(runs)) {
                timeline.marks.push((index, DocumentMark::Run(run)));
            }
            if language_changed.swap(false, Ordering::Relaxed) {
                if let Some(language) = doc.language() {
                    timeline
                        .marks
                        .push((index, DocumentMark::Language(language)));
                    timeline.languages.push((index, language));
                }
            }
            timeline.steps.push(Step {
                at_ms: record.at_ms,
                author: record.author,
                update: record.update,
                changed_code,
            });
            if (index + 1) % CHECKPOINT_EVERY == 0 {
                let state = doc
                    .doc()
                    .transact()
                    .encode_state_as_update_v1(&StateVector::default());
                timeline.checkpoints.push(state);
            }
        }
        records.len() == 0
    }

    /// The code as replayed so far.
    pub fn code(&self) -> String {
        self.doc.code()
    }

    /// Replays what is left and hands over the timeline.
    pub fn finish(mut self) -> Timeline {
        self.advance(usize::MAX);
        self.timeline
    }
}

impl Timeline {
    /// Replays the packed history at once.
    pub fn build(packed: Vec<u8>) -> Result<Self, HistoryError> {
        Ok(TimelineBuilder::new(packed)?.finish())
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// When the first update was stored (the timeline's zero), ms since the epoch.
    pub fn start_ms(&self) -> u64 {
        self.steps.first().map_or(0, |step| step.at_ms)
    }

    /// When the last update was stored.
    pub fn end_ms(&self) -> u64 {
        self.steps.last().map_or(0, |step| step.at_ms)
    }

    /// How many steps had happened at `at_ms` (every one stored at or before it).
    pub fn steps_at(&self, at_ms: u64) -> usize {
        self.steps.partition_point(|step| step.at_ms <= at_ms)
    }

    /// The time of the last code change strictly before `at_ms`, if any.
    pub fn previous_change(&self, at_ms: u64) -> Option<u64> {
        let before = self.steps.partition_point(|step| step.at_ms < at_ms);
        self.steps[..before]
            .iter()
            .rev()
            .find(|step| step.changed_code)
            .map(|step| step.at_ms)
    }

    /// The time of the first code change strictly after `at_ms`, if any.
    pub fn next_change(&self, at_ms: u64) -> Option<u64> {
        let after = self.steps_at(at_ms);
        self.steps[after..]
            .iter()
            .find(|step| step.changed_code)
            .map(|step| step.at_ms)
    }

    /// The code after the first `count` steps.
    pub fn code_after(&self, count: usize) -> String {
        self.document_after(count).code()
    }

    /// Where the code after `count` steps holds text `author` inserted: UTF-16
    /// ranges as flat `[start, end, start, end, ...]`.
    pub fn ranges_by(&self, count: usize, author: u64) -> Vec<u32> {
        let doc = self.document_after(count);
        let mut txn = doc.doc().transact_mut();
        // Every visible item as "added" since nothing: each chunk names the
        // client whose item it is.
        let now = txn.snapshot();
        let chunks = doc.code_ref().diff_range(
            &mut txn,
            Some(&now),
            Some(&Snapshot::default()),
            |change: YChange| change.id.client,
        );
        let mut ranges: Vec<u32> = Vec::new();
        let mut at = 0u32;
        for chunk in chunks {
            let Out::Any(yrs::Any::String(text)) = &chunk.insert else {
                continue;
            };
            let len = text.encode_utf16().count() as u32;
            if chunk.ychange.map(|client| client.get()) == Some(author) {
                // Adjacent chunks of one author make one range.
                if ranges.last() == Some(&at) {
                    *ranges.last_mut().expect("checked") = at + len;
                } else {
                    ranges.extend([at, at + len]);
                }
            }
            at += len;
        }
        ranges
    }

    /// The language after the first `count` steps, if the history set one.
    pub fn language_after(&self, count: usize) -> Option<Language> {
        self.languages
            .iter()
            .take_while(|(index, _)| *index < count)
            .last()
            .map(|(_, language)| *language)
    }

    /// The marks the updates make, with the time of each.
    pub fn marks(&self) -> impl Iterator<Item = (u64, &DocumentMark)> {
        self.marks
            .iter()
            .map(|(index, mark)| (self.steps[*index].at_ms, mark))
    }

    /// Everyone who changed the code, in order of their first change (the
    /// server itself, 0, is no one).
    pub fn authors(&self) -> &[u64] {
        &self.authors
    }

    /// The whole document after the first `count` steps: the checkpoint
    /// before, then the steps since.
    fn document_after(&self, count: usize) -> SessionDoc {
        let count = count.min(self.steps.len());
        let checkpoint = (count / CHECKPOINT_EVERY).min(self.checkpoints.len() - 1);
        let since = self.steps[checkpoint * CHECKPOINT_EVERY..count]
            .iter()
            .map(|step| &self.packed[step.update.clone()]);
        // Updates that do not apply are skipped, as the server skipped them.
        let (doc, _skipped) = SessionDoc::from_updates(
            std::iter::once(&self.checkpoints[checkpoint][..]).chain(since),
        );
        doc
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A run as the runs array holds it.
fn run_of(value: &Out) -> Option<RunRecord> {
    let Out::Any(any) = value else {
        return None;
    };
    serde_json::to_value(any)
        .ok()
        .and_then(|json| serde_json::from_value(json).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::run::{OutputChunk, RunStatus};
    use crate::sync::protocol::write_varuint;
    use yrs::{updates::decoder::Decode, Doc, GetString, Options, ReadTxn, Text, Update};

    fn pack(records: &[Logged]) -> Vec<u8> {
        let mut packed = Vec::new();
        let mut previous = 0;
        for (at, author, update) in records {
            write_varuint(&mut packed, at - previous);
            previous = *at;
            write_varuint(&mut packed, *author);
            write_varuint(&mut packed, update.len() as u64);
            packed.extend_from_slice(update);
        }
        packed
    }

    fn doc(client: u64) -> Doc {
        Doc::with_options(Options {
            client_id: yrs::block::ClientID::new(client),
            offset_kind: yrs::OffsetKind::Utf16,
            ..Options::default()
        })
    }

    /// A stored update: time, author, bytes.
    type Logged = (u64, u64, Vec<u8>);
    /// An edit one person makes to the code.
    type EditFn = dyn Fn(&yrs::TextRef, &mut yrs::TransactionMut);

    /// Two people typing into one document; every update in the order the
    /// server stored it, with the text after each.
    fn session() -> (Vec<Logged>, Vec<String>) {
        let (ann, bo) = (doc(11), doc(22));
        let mut log = Vec::new();
        let mut texts = Vec::new();
        let mut at = 1_700_000_000_000;
        let edits: [(&Doc, u64, &EditFn); 6] = [
            (&ann, 11, &|t, txn| t.insert(txn, 0, "héllo 👋\n")),
            (&bo, 22, &|t, txn| t.insert(txn, 9, "世界")),
            (&ann, 11, &|t, txn| t.remove_range(txn, 6, 2)),
            (&bo, 22, &|t, txn| t.insert(txn, 0, "# ")),
            (&ann, 11, &|t, txn| t.insert(txn, 2, "a\u{301}")),
            (&bo, 22, &|t, txn| t.remove_range(txn, 0, 1)),
        ];
        for (author_doc, author, edit) in edits {
            let code = author_doc.get_or_insert_text("code");
            let update = {
                let mut txn = author_doc.transact_mut();
                edit(&code, &mut txn);
                txn.encode_update_v1()
            };
            // The other side receives it.
            let other = if author == 11 { &bo } else { &ann };
            other
                .transact_mut()
                .apply_update(Update::decode_v1(&update).unwrap())
                .unwrap();
            at += 1_000;
            log.push((at, author, update));
            texts.push(code.get_string(&author_doc.transact()));
        }
        (log, texts)
    }

    #[test]
    fn the_code_after_every_step_is_what_the_participants_had() {
        let (log, texts) = session();
        let packed = pack(&log);
        assert_eq!(unpack(&packed).unwrap().len(), log.len());
        let timeline = Timeline::build(packed).unwrap();
        assert_eq!(timeline.code_after(0), "");
        for (count, text) in texts.iter().enumerate() {
            assert_eq!(&timeline.code_after(count + 1), text, "after {}", count + 1);
            // Seeking by time lands on the same step.
            assert_eq!(timeline.steps_at(log[count].0), count + 1);
        }
        assert_eq!(timeline.authors(), [11, 22]);
        assert_eq!(timeline.next_change(log[1].0), Some(log[2].0));
        assert_eq!(timeline.previous_change(log[1].0), Some(log[0].0));
        assert_eq!(timeline.previous_change(log[0].0), None);
    }

    #[test]
    fn checkpoints_give_the_same_text_as_replaying_from_the_start() {
        let writer = doc(5);
        let code = writer.get_or_insert_text("code");
        let mut log = Vec::new();
        for i in 0..(CHECKPOINT_EVERY * 3 + 17) as u64 {
            let update = {
                let mut txn = writer.transact_mut();
                let len = code.len(&txn);
                if i % 7 == 6 && len > 0 {
                    code.remove_range(&mut txn, len / 2, 1);
                } else {
                    code.insert(&mut txn, len / 3, if i % 5 == 0 { "é" } else { "x" });
                }
                txn.encode_update_v1()
            };
            log.push((1_000 + i, 5, update));
        }
        let final_text = code.get_string(&writer.transact());
        let packed = pack(&log);
        let timeline = Timeline::build(packed).unwrap();
        assert_eq!(timeline.code_after(log.len()), final_text);
        let fresh = doc(9);
        let text = fresh.get_or_insert_text("code");
        for (count, (_, _, update)) in log.iter().enumerate() {
            fresh
                .transact_mut()
                .apply_update(Update::decode_v1(update).unwrap())
                .unwrap();
            if count % 97 == 0 || (count + 1) % CHECKPOINT_EVERY == 0 {
                assert_eq!(
                    timeline.code_after(count + 1),
                    text.get_string(&fresh.transact())
                );
            }
        }
    }

    #[test]
    fn each_persons_surviving_text_is_found_for_highlighting() {
        let (log, texts) = session();
        let packed = pack(&log);
        let timeline = Timeline::build(packed).unwrap();
        let text: Vec<u16> = texts[5].encode_utf16().collect();
        let of = |author| -> String {
            timeline
                .ranges_by(6, author)
                .chunks(2)
                .map(|r| String::from_utf16_lossy(&text[r[0] as usize..r[1] as usize]))
                .collect()
        };
        assert_eq!(of(22), " 世界");
        assert_eq!(of(11), "a\u{301}héllo \n");
        assert!(timeline.ranges_by(6, 99).is_empty());
    }

    #[test]
    fn runs_and_language_changes_are_marked_where_they_happened() {
        let client = SessionDoc::with_client_id(3);
        let language = client.set_language(Language::JavaScript);
        let run = RunRecord {
            id: "3-1".into(),
            by: "Ann".into(),
            language: Language::JavaScript,
            started_at: 10,
            duration_ms: 5,
            status: RunStatus::Ok,
            output: vec![OutputChunk {
                stream: crate::domain::run::Stream::Stdout,
                text: "hi\n".into(),
            }],
            truncated: false,
        };
        let before = client.doc().transact().state_vector();
        client.record_run(&run, None);
        let recorded = client.doc().transact().encode_state_as_update_v1(&before);
        let switch = client.set_language(Language::Python);
        let log = vec![(100, 0, language), (200, 3, recorded), (300, 3, switch)];
        let packed = pack(&log);
        let timeline = Timeline::build(packed).unwrap();
        let marks: Vec<(u64, DocumentMark)> =
            timeline.marks().map(|(at, m)| (at, m.clone())).collect();
        assert_eq!(
            marks,
            [
                (100, DocumentMark::Language(Language::JavaScript)),
                (200, DocumentMark::Run(run)),
                (300, DocumentMark::Language(Language::Python)),
            ]
        );
        assert_eq!(timeline.language_after(2), Some(Language::JavaScript));
        assert_eq!(timeline.language_after(3), Some(Language::Python));
        assert!(timeline.authors().is_empty(), "nobody changed the code");
    }

    #[test]
    fn damaged_histories_are_errors_not_panics() {
        let packed = pack(&[(5, 1, vec![1, 2, 3])]);
        for cut in 1..packed.len() {
            assert!(unpack(&packed[..cut]).is_err(), "cut at {cut}");
        }
        // Garbage updates replay as nothing.
        let garbage = pack(&[(5, 1, vec![0xff; 10])]);
        let timeline = Timeline::build(garbage).unwrap();
        assert_eq!(timeline.code_after(1), "");
    }
}
