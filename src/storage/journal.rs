//! The journal: an append-only file that stores document updates with one write
//! each (safe from a crash of the process once written: the kernel has them;
//! where it is safe, the write is a copy into a mapping of the file, see
//! [`super::mapped_file`], otherwise a `pwrite`) and
//! makes them safe from power loss with one `fdatasync` for everything written
//! since the last ([`Journal::file`] is what the caller syncs, see
//! [`super::journaled`]). Committing every edit straight into
//! redb copied whole B-tree pages (about 18 KiB written per edit) and cost most of
//! the server's CPU; the journal writes each update once, a few dozen bytes.
//! [`super::EmbeddedStorage`] folds journaled updates into the database now and
//! then, and on open replays what the last run did not fold.
//!
//! File layout: a header (magic, generation), then records back to back:
//! `len u32 | crc32 u32 | payload` with payload
//! `session u128 | at_ms u64 | author u64 | update`, all little-endian. A
//! journal from before authors (magic `PPJRNL01`, no author) is still read,
//! with author 0; appends always follow a restart, which writes today's magic. The CRC covers the generation, `len` and the payload, so
//! a torn write ends the journal and, after [`Journal::restart`], records left
//! from an earlier generation no longer count.
//!
//! The file is zero-filled to its capacity once: appends then overwrite existing
//! blocks, so `fdatasync` flushes data pages only, never file-size metadata.
//! Every write is split at page boundaries: the kernel caches a big write in large
//! folios (measured here: 1 MiB ones), and each later small append would then
//! dirty, and flush, a whole megabyte instead of one page.

use super::{mapped_file::MappedFile, UpdateRecord};
use crate::domain::SessionId;
use std::{
    fs::{File, OpenOptions},
    io::{self, Read},
    os::unix::fs::FileExt,
    path::Path,
    sync::Arc,
};

const MAGIC: &[u8; 8] = b"PPJRNL02";
/// The magic of journals whose records carry no author.
const MAGIC_WITHOUT_AUTHORS: &[u8; 8] = b"PPJRNL01";
/// Magic, generation, CRC of both.
const HEADER_BYTES: u64 = 20;
/// `len` and CRC.
const RECORD_HEADER_BYTES: usize = 8;
/// Session id, timestamp and author.
const PAYLOAD_FIXED_BYTES: usize = 16 + 8 + 8;
/// Session id and timestamp (journals without authors).
const PAYLOAD_FIXED_BYTES_WITHOUT_AUTHORS: usize = 16 + 8;
/// No write crosses a boundary of this size (see the module docs).
const PAGE: u64 = 4096;

/// Bytes a batch takes in the journal.
pub fn encoded_len(records: &[UpdateRecord]) -> u64 {
    records
        .iter()
        .map(|r| (RECORD_HEADER_BYTES + PAYLOAD_FIXED_BYTES + r.update.len()) as u64)
        .sum()
}

/// What [`Journal::open`] found from an earlier run.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The generation the records belong to (0 for a new or unreadable file).
    pub generation: u64,
    /// Valid records, in the order they were appended.
    pub records: Vec<UpdateRecord>,
}

pub struct Journal {
    /// Shared so that syncing (`fdatasync`) can happen without the journal's lock.
    file: Arc<File>,
    generation: u64,
    /// Where the next record goes.
    end: u64,
    /// The file's size; appends within it do not change file metadata.
    capacity: u64,
    /// A failed restart leaves the file in an unknown generation: refuse appends
    /// rather than write records that recovery might skip.
    broken: bool,
    scratch: Vec<u8>,
    /// The file's first `capacity` bytes, where appends are copied (`None`:
    /// they are written with `pwrite`).
    mapped: Option<MappedFile>,
}

impl Journal {
    /// Opens (or creates) the journal at `path`, returns it with the records the
    /// file holds. Call [`Journal::restart`] before appending.
    pub fn open(path: &Path, capacity: u64) -> io::Result<(Self, Recovered)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut contents = Vec::new();
        file.read_to_end(&mut contents)?;
        let recovered = parse(&contents);
        let capacity = capacity.max(HEADER_BYTES);
        let size = contents.len() as u64;
        drop(contents);
        if size < capacity {
            zero_fill(&file, size, capacity)?;
            file.sync_all()?;
            if let Some(dir) = path.parent() {
                // Make the new file's directory entry durable too.
                File::open(dir)?.sync_all()?;
            }
        }
        let capacity = capacity.max(size);
        // Every block up to `capacity` is written now (zero-filled or earlier
        // records), so appends may go through a mapping.
        let mapped = MappedFile::over_written_blocks(&file, capacity);
        let journal = Journal {
            file: Arc::new(file),
            generation: recovered.generation,
            end: HEADER_BYTES,
            capacity,
            broken: true, // until restart writes a header
            scratch: Vec::new(),
            mapped,
        };
        Ok((journal, recovered))
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The file; `sync_data` on it makes every append so far durable on disk.
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Whether `bytes` more fit without growing the file.
    pub fn has_room_for(&self, bytes: u64) -> bool {
        self.end + bytes <= self.capacity
    }

    /// Starts an empty journal of `generation` (greater than any before): every
    /// record written so far stops counting. Durable when it returns.
    pub fn restart(&mut self, generation: u64) -> io::Result<()> {
        self.broken = true;
        start_generation(&self.file, generation)?;
        self.restarted(generation);
        Ok(())
    }

    /// Records that [`start_generation`] succeeded on this journal's file (done
    /// apart so that the file can be prepared without holding the journal).
    pub fn restarted(&mut self, generation: u64) {
        self.generation = generation;
        self.end = HEADER_BYTES;
        self.broken = false;
        if let Some(mapped) = &mut self.mapped {
            mapped.rewind();
        }
    }

    /// Appends `records`: written when it returns (a crash of the process loses
    /// nothing), on disk after the next `sync_data` of [`Journal::file`]. A batch
    /// bigger than the room left grows the file (then synced here at once: the size
    /// change is metadata that a later `fdatasync` of the data alone might skip).
    pub fn append(&mut self, records: &[UpdateRecord]) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(
                "the journal failed earlier; restart needed",
            ));
        }
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        for record in records {
            encode_record(&mut buf, self.generation, record)?;
        }
        let grows = self.end + buf.len() as u64 > self.capacity;
        let copied = !grows
            && self
                .mapped
                .as_mut()
                .is_some_and(|mapped| mapped.write_at(&buf, self.end));
        let result = if copied {
            Ok(())
        } else {
            write_in_pages(&self.file, &buf, self.end).and_then(|()| {
                if grows {
                    self.file.sync_all()
                } else {
                    Ok(())
                }
            })
        };
        if result.is_ok() {
            self.end += buf.len() as u64;
            if let Some(mapped) = self.mapped.as_mut().filter(|_| copied) {
                // Appends never come back to a page once past it.
                mapped.release_before(self.end);
            }
            if grows {
                self.capacity = self.end;
                // The new blocks are written (and synced): map them too.
                self.mapped = MappedFile::over_written_blocks(&self.file, self.capacity);
            }
        }
        // Keep a modest buffer for the next batch, not the biggest one ever seen.
        if buf.capacity() <= 1 << 16 {
            self.scratch = buf;
        }
        result
    }
}

/// Writes the header of an empty journal of `generation` into `file` and syncs
/// it; follow with [`Journal::restarted`].
pub fn start_generation(file: &File, generation: u64) -> io::Result<()> {
    let mut header = Vec::with_capacity(HEADER_BYTES as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&generation.to_le_bytes());
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    write_in_pages(file, &header, 0)?;
    file.sync_data()
}

fn zero_fill(file: &File, from: u64, to: u64) -> io::Result<()> {
    let zeros = vec![0u8; (to - from) as usize];
    write_in_pages(file, &zeros, from)
}

/// Writes `buf` at `offset`, one page-bounded piece at a time.
fn write_in_pages(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        let to_boundary = (PAGE - offset % PAGE) as usize;
        let (piece, rest) = buf.split_at(to_boundary.min(buf.len()));
        file.write_all_at(piece, offset)?;
        offset += piece.len() as u64;
        buf = rest;
    }
    Ok(())
}

fn record_crc(generation: u64, len: u32, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&generation.to_le_bytes());
    hasher.update(&len.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

fn encode_record(buf: &mut Vec<u8>, generation: u64, record: &UpdateRecord) -> io::Result<()> {
    let len = u32::try_from(PAYLOAD_FIXED_BYTES + record.update.len())
        .map_err(|_| io::Error::other("update too large for the journal"))?;
    let start = buf.len();
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&[0; 4]); // CRC, filled in below
    buf.extend_from_slice(&record.session.as_u128().to_le_bytes());
    buf.extend_from_slice(&record.at_ms.to_le_bytes());
    buf.extend_from_slice(&record.author.to_le_bytes());
    buf.extend_from_slice(&record.update);
    let crc = record_crc(generation, len, &buf[start + RECORD_HEADER_BYTES..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Reads the header and every valid record up to the first invalid one.
fn parse(contents: &[u8]) -> Recovered {
    let Some((generation, with_authors)) = parse_header(contents) else {
        return Recovered::default();
    };
    let fixed = if with_authors {
        PAYLOAD_FIXED_BYTES
    } else {
        PAYLOAD_FIXED_BYTES_WITHOUT_AUTHORS
    };
    let mut records = Vec::new();
    let mut at = HEADER_BYTES as usize;
    while let Some(head) = contents.get(at..at + RECORD_HEADER_BYTES) {
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
        let start = at + RECORD_HEADER_BYTES;
        let Some(payload) = start
            .checked_add(len as usize)
            .and_then(|end| contents.get(start..end))
        else {
            break;
        };
        if (len as usize) < fixed || record_crc(generation, len, payload) != crc {
            break;
        }
        let session = u128::from_le_bytes(payload[..16].try_into().expect("16 bytes"));
        let at_ms = u64::from_le_bytes(payload[16..24].try_into().expect("8 bytes"));
        let author = if with_authors {
            u64::from_le_bytes(payload[24..32].try_into().expect("8 bytes"))
        } else {
            0
        };
        // Only valid ids are ever written; anything else is not our record.
        let Some(session) = SessionId::from_u128(session) else {
            break;
        };
        records.push(UpdateRecord {
            session,
            at_ms,
            author,
            update: payload[fixed..].to_vec(),
        });
        at = start + len as usize;
    }
    Recovered {
        generation,
        records,
    }
}

/// The journal's generation, and whether its records carry authors.
fn parse_header(contents: &[u8]) -> Option<(u64, bool)> {
    let header = contents.get(..HEADER_BYTES as usize)?;
    let with_authors = match &header[..8] {
        magic if magic == MAGIC => true,
        magic if magic == MAGIC_WITHOUT_AUTHORS => false,
        _ => return None,
    };
    let crc = u32::from_le_bytes(header[16..20].try_into().ok()?);
    if crc32fast::hash(&header[..16]) != crc {
        return None;
    }
    Some((
        u64::from_le_bytes(header[8..16].try_into().ok()?),
        with_authors,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(byte: u8, len: usize) -> UpdateRecord {
        UpdateRecord {
            // A fixed, valid v4 id: records compare equal across reopen.
            session: SessionId::from_u128(0xa0b1c2d3_e4f5_4a6b_8c7d_0123456789ab).unwrap(),
            at_ms: 1_000 + u64::from(byte),
            author: 7_000 + u64::from(byte),
            update: vec![byte; len],
        }
    }

    fn reopen(path: &Path) -> Recovered {
        Journal::open(path, 4096).unwrap().1
    }

    #[test]
    fn appended_records_are_recovered_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (mut journal, recovered) = Journal::open(&path, 4096).unwrap();
        assert!(recovered.records.is_empty());
        journal.restart(1).unwrap();
        let batches = [vec![record(1, 3), record(2, 0)], vec![record(3, 100)]];
        for batch in &batches {
            journal.append(batch).unwrap();
        }
        drop(journal);
        let recovered = reopen(&path);
        assert_eq!(recovered.generation, 1);
        assert_eq!(recovered.records, batches.concat());
    }

    #[test]
    fn a_journal_from_before_authors_is_replayed_with_author_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let mut bytes = MAGIC_WITHOUT_AUTHORS.to_vec();
        bytes.extend_from_slice(&4u64.to_le_bytes());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let old = record(5, 3);
        let mut payload = old.session.as_u128().to_le_bytes().to_vec();
        payload.extend_from_slice(&old.at_ms.to_le_bytes());
        payload.extend_from_slice(&old.update);
        let len = payload.len() as u32;
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&record_crc(4, len, &payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        std::fs::write(&path, &bytes).unwrap();
        let (mut journal, recovered) = Journal::open(&path, 4096).unwrap();
        assert_eq!(recovered.generation, 4);
        assert_eq!(
            recovered.records,
            vec![UpdateRecord {
                author: 0,
                ..old.clone()
            }]
        );
        // Appends after the restart carry authors.
        journal.restart(5).unwrap();
        journal.append(&[record(6, 2)]).unwrap();
        drop(journal);
        assert_eq!(reopen(&path).records, vec![record(6, 2)]);
    }

    #[test]
    fn refuses_appends_until_restarted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(&dir.path().join("j"), 4096).unwrap();
        assert!(journal.append(&[record(1, 1)]).is_err());
    }

    #[test]
    fn a_torn_record_ends_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (mut journal, _) = Journal::open(&path, 4096).unwrap();
        journal.restart(3).unwrap();
        journal.append(&[record(1, 10)]).unwrap();
        journal.append(&[record(2, 10)]).unwrap();
        journal.append(&[record(3, 10)]).unwrap();
        drop(journal);
        // Damage one byte of the second record's update.
        let second_update =
            HEADER_BYTES as usize + 2 * RECORD_HEADER_BYTES + 2 * PAYLOAD_FIXED_BYTES + 10 + 5;
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[second_update] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(reopen(&path).records, vec![record(1, 10)]);
    }

    #[test]
    fn restart_discards_earlier_records_even_where_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (mut journal, _) = Journal::open(&path, 4096).unwrap();
        journal.restart(1).unwrap();
        journal
            .append(&[record(1, 50), record(2, 50), record(3, 50)])
            .unwrap();
        journal.restart(2).unwrap();
        // Shorter than the first record: the old ones' bytes follow it on disk.
        journal.append(&[record(9, 1)]).unwrap();
        drop(journal);
        let recovered = reopen(&path);
        assert_eq!(recovered.generation, 2);
        assert_eq!(recovered.records, vec![record(9, 1)]);
    }

    #[test]
    fn a_batch_larger_than_the_file_grows_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (mut journal, _) = Journal::open(&path, 4096).unwrap();
        journal.restart(1).unwrap();
        let big = vec![record(1, 10_000), record(2, 5)];
        assert!(!journal.has_room_for(encoded_len(&big)));
        journal.append(&big).unwrap();
        journal.append(&[record(3, 5)]).unwrap();
        drop(journal);
        assert_eq!(reopen(&path).records.len(), 3);
    }

    #[test]
    fn garbage_or_empty_files_hold_no_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        std::fs::write(&path, b"not a journal at all, just some bytes").unwrap();
        let recovered = reopen(&path);
        assert_eq!(recovered.generation, 0);
        assert!(recovered.records.is_empty());
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            4096,
            "zero-filled to capacity"
        );
    }
}
