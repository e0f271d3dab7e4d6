//! Playback of a session's history, sans IO. [`Timeline::build`] unpacks the
//! stored updates (format in `server::history`), replays them once through
//! yrs, and keeps what each one did to the code (UTF-16 edits, as Monaco
//! counts), who made it, the runs and language changes among them, and a
//! checkpoint of the whole text every [`CHECKPOINT_EVERY`] updates. The code
//! at any instant is then a checkpoint plus at most that many edits: seeking
//! costs the same anywhere in a long session.

use super::text_ops::{ops_from_delta, TextOp};
use crate::{
    domain::{run::RunRecord, Language},
    sync::{document::META_LANGUAGE, SessionDoc},
};
use std::sync::{Arc, Mutex};
use yrs::{types::Change, updates::decoder::Decode, Observable, Transact, Update};

/// Updates between two checkpoints of the whole text.
pub const CHECKPOINT_EVERY: usize = 256;

/// One stored update as the history hands it over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedRecord<'a> {
    pub at_ms: u64,
    pub author: u64,
    pub update: &'a [u8],
}

/// Why a history could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the history is damaged: {0}")]
pub struct HistoryError(String);

/// Splits the packed history into its records.
pub fn unpack(mut packed: &[u8]) -> Result<Vec<PackedRecord<'_>>, HistoryError> {
    let mut records = Vec::new();
    let mut at_ms = 0u64;
    while !packed.is_empty() {
        let delta = read_varuint(&mut packed)?;
        at_ms = at_ms.saturating_add(delta);
        let author = read_varuint(&mut packed)?;
        let len = usize::try_from(read_varuint(&mut packed)?)
            .map_err(|_| HistoryError("record too long".into()))?;
        if packed.len() < len {
            return Err(HistoryError(format!(
                "record {} is truncated",
                records.len() + 1
            )));
        }
        let (update, rest) = packed.split_at(len);
        packed = rest;
        records.push(PackedRecord {
            at_ms,
            author,
            update,
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

/// What one stored update did.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub at_ms: u64,
    pub author: u64,
    /// Its edits to the code (empty if it did not touch the code).
    edits: Vec<TextOp>,
}

impl Step {
    pub fn changed_code(&self) -> bool {
        !self.edits.is_empty()
    }
}

/// Something worth a mark on the timeline that the updates themselves show.
#[derive(Clone, Debug, PartialEq)]
pub enum DocumentMark {
    /// A run was recorded (with its output).
    Run(RunRecord),
    /// The language was switched to this one.
    Language(Language),
}

/// The code at some point, with who inserted each UTF-16 unit of it.
#[derive(Clone, Debug, Default, PartialEq)]
struct Snapshot {
    text: Vec<u16>,
    /// Parallel to `text`: an index into [`Timeline::authors`].
    by: Vec<u16>,
}

impl Snapshot {
    fn apply(&mut self, edits: &[TextOp], author: u16) {
        let mut at = 0usize;
        for edit in edits {
            match edit {
                TextOp::Retain(n) => at += *n as usize,
                TextOp::Delete(n) => {
                    let end = (at + *n as usize).min(self.text.len());
                    let at = at.min(end);
                    self.text.drain(at..end);
                    self.by.drain(at..end);
                }
                TextOp::Insert(inserted) => {
                    let units: Vec<u16> = inserted.encode_utf16().collect();
                    let len = units.len();
                    let at_clamped = at.min(self.text.len());
                    self.text.splice(at_clamped..at_clamped, units);
                    self.by
                        .splice(at_clamped..at_clamped, std::iter::repeat_n(author, len));
                    at = at_clamped + len;
                }
            }
        }
    }
}

/// A session's history, ready to show at any instant.
pub struct Timeline {
    steps: Vec<Step>,
    /// `checkpoints[k]` is the code after the first `k * CHECKPOINT_EVERY` steps.
    checkpoints: Vec<Snapshot>,
    /// Every author seen, in order of first change (index 0 is "nobody").
    authors: Vec<u64>,
    /// Marks the updates make: (index of the step, mark).
    marks: Vec<(usize, DocumentMark)>,
    /// The language after each mark, for showing the code as it was.
    languages: Vec<(usize, Language)>,
}

impl Timeline {
    /// Replays `records` (in log order) once.
    pub fn build(records: &[PackedRecord<'_>]) -> Self {
        let doc = SessionDoc::new();
        let edits: Arc<Mutex<Vec<TextOp>>> = Arc::default();
        let runs: Arc<Mutex<Vec<RunRecord>>> = Arc::default();
        let language_changed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let sink = edits.clone();
            doc.code_ref().observe("playback", move |txn, event| {
                let ops = ops_from_delta(event.delta(txn));
                lock(&sink).extend(ops);
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
                    flag.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
        let mut timeline = Timeline {
            steps: Vec::with_capacity(records.len()),
            checkpoints: vec![Snapshot::default()],
            authors: vec![0],
            marks: Vec::new(),
            languages: Vec::new(),
        };
        let mut current = Snapshot::default();
        for (index, record) in records.iter().enumerate() {
            // A record that does not decode or apply changes nothing here,
            // as on the server (it skipped it the same way).
            if let Ok(update) = Update::decode_v1(record.update) {
                let _ = doc.doc().transact_mut().apply_update(update);
            }
            let step_edits = std::mem::take(&mut *lock(&edits));
            let author = timeline.author_index(record.author, !step_edits.is_empty());
            current.apply(&step_edits, author);
            for run in std::mem::take(&mut *lock(&runs)) {
                timeline.marks.push((index, DocumentMark::Run(run)));
            }
            if language_changed.swap(false, std::sync::atomic::Ordering::Relaxed) {
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
                edits: step_edits,
            });
            if (index + 1) % CHECKPOINT_EVERY == 0 {
                timeline.checkpoints.push(current.clone());
            }
        }
        timeline
    }

    /// The index of `author` in `authors`, added if it made a change.
    fn author_index(&mut self, author: u64, changed: bool) -> u16 {
        if let Some(index) = self.authors.iter().position(|known| *known == author) {
            return index as u16;
        }
        if !changed || self.authors.len() >= usize::from(u16::MAX) {
            return 0;
        }
        self.authors.push(author);
        (self.authors.len() - 1) as u16
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
            .find(|step| step.changed_code())
            .map(|step| step.at_ms)
    }

    /// The time of the first code change strictly after `at_ms`, if any.
    pub fn next_change(&self, at_ms: u64) -> Option<u64> {
        let after = self.steps_at(at_ms);
        self.steps[after..]
            .iter()
            .find(|step| step.changed_code())
            .map(|step| step.at_ms)
    }

    /// The code after the first `count` steps.
    pub fn code_after(&self, count: usize) -> String {
        String::from_utf16_lossy(&self.snapshot_after(count).text)
    }

    /// Where the code after `count` steps holds text `author` inserted: UTF-16
    /// ranges as flat `[start, end, start, end, ...]`.
    pub fn ranges_by(&self, count: usize, author: u64) -> Vec<u32> {
        let Some(wanted) = self.authors.iter().position(|known| *known == author) else {
            return Vec::new();
        };
        let wanted = wanted as u16;
        let snapshot = self.snapshot_after(count);
        let mut ranges = Vec::new();
        let mut start = None;
        for (at, by) in snapshot.by.iter().chain([&u16::MAX]).enumerate() {
            match (start, *by == wanted) {
                (None, true) => start = Some(at as u32),
                (Some(from), false) => {
                    ranges.extend([from, at as u32]);
                    start = None;
                }
                _ => {}
            }
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

    /// Everyone who changed the code, in order of their first change.
    pub fn authors(&self) -> &[u64] {
        &self.authors[1..]
    }

    fn snapshot_after(&self, count: usize) -> Snapshot {
        let count = count.min(self.steps.len());
        let checkpoint = (count / CHECKPOINT_EVERY).min(self.checkpoints.len() - 1);
        let mut snapshot = self.checkpoints[checkpoint].clone();
        for step in &self.steps[checkpoint * CHECKPOINT_EVERY..count] {
            let author = self
                .authors
                .iter()
                .position(|known| *known == step.author)
                .unwrap_or(0) as u16;
            snapshot.apply(&step.edits, author);
        }
        snapshot
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A run as the runs array holds it.
fn run_of(value: &yrs::Out) -> Option<RunRecord> {
    let yrs::Out::Any(any) = value else {
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
    use yrs::{Doc, GetString, Options, ReadTxn, Text};

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
        let records = unpack(&packed).unwrap();
        assert_eq!(records.len(), log.len());
        let timeline = Timeline::build(&records);
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
        let timeline = Timeline::build(&unpack(&packed).unwrap());
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
        let timeline = Timeline::build(&unpack(&packed).unwrap());
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
        let timeline = Timeline::build(&unpack(&packed).unwrap());
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
        let timeline = Timeline::build(&unpack(&garbage).unwrap());
        assert_eq!(timeline.code_after(1), "");
    }
}
