//! A session's compact history on Redis: where log entries go once a snapshot
//! covers them, so that the stream stays short while playback keeps every
//! timestamped update.
//!
//! A stream entry costs about 65 bytes in Redis besides its update (field
//! names, a 13-digit timestamp, an author id, the instance mark), and a
//! session's log is needed whole only for playback and export: loading needs
//! the snapshot and what follows it. So [`super::RedisStorage`] moves entries
//! that a stored snapshot covers, once they are [`super::RedisOptions::compact_after`]
//! old, into `pp:{<id>}:hist`: a LIST of chunks, each holding a run of
//! consecutive entries in the format below (a few bytes besides the update).
//! The move is one script ([`COMPACT_SCRIPT`]): the chunk is appended, the
//! entries trimmed from the stream and `cid` (the last compacted stream id)
//! set on the snapshot hash, all or nothing. It is a compare-and-set on the
//! stream's first entry, so two instances compacting at once fold each entry
//! once: the second finds the stream changed and gives up.
//!
//! Readers that page through the stream (loading, playback) read `cid` before
//! and after and read again if it moved; followers of the log (`super::tail`)
//! that may have fallen behind compare their position with `cid` and take
//! what they missed from here.
//!
//! Chunk layout (lib0 varints, as yrs writes them): format version (1), the
//! stream id of the chunk's last entry (ms, then sequence), entry count; then
//! per entry: seq minus the previous entry's (the first: its seq), timestamp
//! minus the previous one's (signed: instances' clocks differ), update length
//! times two plus one if the author differs from the previous entry's (then
//! the author), and the update.

use super::StreamId;
use crate::storage::LoggedUpdate;
use yrs::encoding::{
    read::{Cursor, Read},
    write::Write,
};

/// Entries folded into one chunk at most (a chunk is one Redis string,
/// about 30 bytes an entry for typing).
pub(super) const CHUNK_ENTRIES: usize = 4_096;

const FORMAT_VERSION: u8 = 1;

/// Folds a run of the log into the history, if nobody folded any of it
/// meanwhile. KEYS: log, hist, snap, meta. ARGV: the run's first stream id,
/// its last, the chunk, the id just after the last (where the stream starts
/// again). The history lives as long as the session's record.
/// Returns how many entries left the stream (0: the stream changed, the
/// session is gone, or the snapshot does not cover the run).
pub(super) const COMPACT_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[4]) == 0 then return 0 end
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 or first[1][1] ~= ARGV[1] then return 0 end
local function parse(id)
  local ms, n = string.match(id or '', '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(n)
end
local last_ms, last_n = parse(ARGV[2])
local snap_ms, snap_n = parse(redis.call('HGET', KEYS[3], 'id'))
if last_ms == nil or snap_ms == nil then return 0 end
if snap_ms < last_ms or (snap_ms == last_ms and snap_n < last_n) then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[3])
local removed = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[4])
redis.call('HSET', KEYS[3], 'cid', ARGV[2])
local ttl = redis.call('PTTL', KEYS[4])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return removed
";

/// One chunk of the history: a run of consecutive log entries.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Chunk {
    /// The stream id its last entry had.
    pub last_id: StreamId,
    pub entries: Vec<LoggedUpdate>,
}

/// The chunk holding `entries` (in log order), the last of which had stream
/// id `last_id`.
pub(super) fn encode(last_id: StreamId, entries: &[LoggedUpdate]) -> Vec<u8> {
    let updates: usize = entries.iter().map(|entry| entry.update.len()).sum();
    let mut chunk = Vec::with_capacity(32 + updates + entries.len() * 6);
    chunk.write_u8(FORMAT_VERSION);
    chunk.write_var(last_id.ms);
    chunk.write_var(last_id.seq);
    chunk.write_var(entries.len());
    let (mut seq, mut at_ms, mut author) = (0u64, 0u64, 0u64);
    for entry in entries {
        chunk.write_var(entry.seq.wrapping_sub(seq));
        chunk.write_var(entry.at_ms.wrapping_sub(at_ms) as i64);
        let new_author = entry.author != author;
        chunk.write_var(entry.update.len() as u64 * 2 + u64::from(new_author));
        if new_author {
            chunk.write_var(entry.author);
        }
        chunk.write_all(&entry.update);
        (seq, at_ms, author) = (entry.seq, entry.at_ms, entry.author);
    }
    chunk
}

/// A chunk from its bytes.
pub(super) fn decode(bytes: &[u8]) -> Result<Chunk, String> {
    let bad = |e: yrs::encoding::read::Error| format!("history chunk is unreadable: {e}");
    let mut cursor = Cursor::new(bytes);
    let version = cursor.read_u8().map_err(bad)?;
    if version != FORMAT_VERSION {
        return Err(format!("history chunk has unknown format {version}"));
    }
    let last_id = StreamId {
        ms: cursor.read_var().map_err(bad)?,
        seq: cursor.read_var().map_err(bad)?,
    };
    let count: usize = cursor.read_var().map_err(bad)?;
    // Every entry takes at least 4 bytes: a count beyond that is a lie.
    if count > bytes.len() / 4 {
        return Err(format!("history chunk claims {count} entries"));
    }
    let mut entries = Vec::with_capacity(count);
    let (mut seq, mut at_ms, mut author) = (0u64, 0u64, 0u64);
    for _ in 0..count {
        seq = seq.wrapping_add(cursor.read_var().map_err(bad)?);
        at_ms = at_ms.wrapping_add(cursor.read_var::<i64>().map_err(bad)? as u64);
        let length_and_flag: u64 = cursor.read_var().map_err(bad)?;
        if length_and_flag & 1 == 1 {
            author = cursor.read_var().map_err(bad)?;
        }
        let length = usize::try_from(length_and_flag / 2).map_err(|e| e.to_string())?;
        let update = cursor.read_exact(length).map_err(bad)?.to_vec();
        entries.push(LoggedUpdate {
            seq,
            at_ms,
            author,
            update,
        });
    }
    if cursor.has_content() {
        return Err("history chunk has bytes after its entries".into());
    }
    Ok(Chunk { last_id, entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, at_ms: u64, author: u64, update: &[u8]) -> LoggedUpdate {
        LoggedUpdate {
            seq,
            at_ms,
            author,
            update: update.to_vec(),
        }
    }

    #[test]
    fn a_chunk_gives_back_every_entry_as_it_was_and_costs_a_few_bytes_besides_the_updates() {
        let entries = vec![
            entry(41, 1_764_000_000_000, 7_000_000_123, b"first"),
            entry(42, 1_764_000_000_180, 7_000_000_123, b"same author"),
            // Another instance's clock is a little behind.
            entry(43, 1_764_000_000_150, 2_900_000_001, b"other author"),
            entry(44, 1_764_000_000_400, 0, b""),
            entry(45, 1_764_000_000_420, 7_000_000_123, &[0; 300]),
        ];
        let last_id = StreamId {
            ms: 1_764_000_000_421,
            seq: 3,
        };
        let chunk = encode(last_id, &entries);
        let updates: usize = entries.iter().map(|e| e.update.len()).sum();
        assert!(
            chunk.len() <= updates + 24 + entries.len() * 5 + 3 * 5,
            "{} bytes for {updates} bytes of updates",
            chunk.len()
        );
        assert_eq!(decode(&chunk), Ok(Chunk { last_id, entries }));
    }

    #[test]
    fn a_damaged_chunk_is_an_error_not_a_panic() {
        let entries = vec![entry(1, 5, 1, b"abc"), entry(2, 6, 1, b"def")];
        let chunk = encode(StreamId { ms: 9, seq: 0 }, &entries);
        for cut in 0..chunk.len() {
            assert!(decode(&chunk[..cut]).is_err(), "cut at {cut} read as whole");
        }
        let mut longer = chunk.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        let mut other_version = chunk;
        other_version[0] = 9;
        assert!(decode(&other_version).is_err());
        assert!(decode(&[1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}
