//! The update log's row format. A row holds consecutive entries of one session's
//! log, the updates one journal fold brought in for it: a fold then costs one
//! B-tree insert per session instead of one per update, which was most of the
//! fold thread's CPU under load. The row's key is (session, seq of its first
//! entry); entries number on from there.
//!
//! Layout: entry count (u32 little-endian), then per entry its timestamp (u64
//! LE), the update's length (u32 LE) and the update. Rows written since
//! playback attributes updates set the count's top bit ([`WITH_AUTHORS`]) and
//! have each entry's author (u64 LE) after its timestamp; older rows read
//! with author 0.

use super::LoggedUpdate;

const COUNT_BYTES: usize = 4;
/// The count's flag saying entries carry their author.
const WITH_AUTHORS: u32 = 1 << 31;
const ENTRY_HEADER_BYTES: usize = 8 + 8 + 4;
const LEGACY_ENTRY_HEADER_BYTES: usize = 8 + 4;

/// One entry of a row: timestamp in ms, author, update.
pub type Entry<'a> = (u64, u64, &'a [u8]);

/// One row holding `entries`, in log order.
pub fn encode<'a>(entries: impl ExactSizeIterator<Item = Entry<'a>>) -> Vec<u8> {
    let count = entries.len();
    let mut row = Vec::with_capacity(COUNT_BYTES + count * (ENTRY_HEADER_BYTES + 64));
    row.extend_from_slice(&(count as u32 | WITH_AUTHORS).to_le_bytes());
    for (at_ms, author, update) in entries {
        row.extend_from_slice(&at_ms.to_le_bytes());
        row.extend_from_slice(&author.to_le_bytes());
        row.extend_from_slice(&(update.len() as u32).to_le_bytes());
        row.extend_from_slice(update);
    }
    row
}

/// How many entries `row` holds, and whether they carry authors.
fn header(row: &[u8]) -> Result<(u64, bool), String> {
    let count = row
        .get(..COUNT_BYTES)
        .ok_or_else(|| "log row is truncated".to_owned())?;
    let count = u32::from_le_bytes(count.try_into().expect("4 bytes"));
    Ok((u64::from(count & !WITH_AUTHORS), count & WITH_AUTHORS != 0))
}

/// How many entries `row` holds.
pub fn entry_count(row: &[u8]) -> Result<u64, String> {
    header(row).map(|(count, _)| count)
}

/// Appends to `out` the entries of `row` (whose first entry is `first_seq`)
/// numbered above `after_seq`.
pub fn decode_after(
    first_seq: u64,
    row: &[u8],
    after_seq: u64,
    out: &mut Vec<LoggedUpdate>,
) -> Result<(), String> {
    let (count, with_authors) = header(row)?;
    let header_bytes = if with_authors {
        ENTRY_HEADER_BYTES
    } else {
        LEGACY_ENTRY_HEADER_BYTES
    };
    let mut rest = &row[COUNT_BYTES..];
    for seq in first_seq..first_seq + count {
        let truncated = || format!("log entry {seq} is truncated");
        if rest.len() < header_bytes {
            return Err(truncated());
        }
        let (header, tail) = rest.split_at(header_bytes);
        let at_ms = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
        let author = if with_authors {
            u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"))
        } else {
            0
        };
        let len_at = header_bytes - 4;
        let len = u32::from_le_bytes(header[len_at..].try_into().expect("4 bytes")) as usize;
        if tail.len() < len {
            return Err(truncated());
        }
        let (update, tail) = tail.split_at(len);
        if seq > after_seq {
            out.push(LoggedUpdate {
                seq,
                at_ms,
                author,
                update: update.to_vec(),
            });
        }
        rest = tail;
    }
    if rest.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "log row at {first_seq} has {} bytes after its entries",
            rest.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(first_seq: u64, row: &[u8], after_seq: u64) -> Result<Vec<LoggedUpdate>, String> {
        let mut out = Vec::new();
        decode_after(first_seq, row, after_seq, &mut out).map(|()| out)
    }

    #[test]
    fn entries_come_back_numbered_from_the_rows_first_seq() {
        let updates: [&[u8]; 3] = [b"one", b"", &[0xff; 300]];
        let row = encode(
            updates
                .iter()
                .enumerate()
                .map(|(i, u)| (1_000 + i as u64, 70 + i as u64, *u)),
        );
        assert_eq!(entry_count(&row), Ok(3));
        let all = decode(41, &row, 0).unwrap();
        let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [41, 42, 43]);
        assert_eq!((all[1].at_ms, all[1].author), (1_001, 71));
        assert_eq!(all[1].update, b"");
        assert_eq!(all[2].update, vec![0xff; 300]);
        // A snapshot covering 42 leaves only the last entry to replay.
        let later = decode(41, &row, 42).unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].seq, 43);
    }

    #[test]
    fn damaged_rows_are_errors_not_panics() {
        let row = encode([(7u64, 9u64, b"update".as_slice())].into_iter());
        for cut in 0..row.len() {
            assert!(decode(1, &row[..cut], 0).is_err(), "cut at {cut}");
        }
        let mut longer = row.clone();
        longer.push(0);
        assert!(decode(1, &longer, 0).is_err());
        // A count far beyond the bytes present.
        let mut huge = row;
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(1, &huge, 0).is_err());
    }

    #[test]
    fn rows_written_before_authors_read_with_author_zero() {
        let mut legacy = 2u32.to_le_bytes().to_vec();
        for (at_ms, update) in [(5u64, b"ab".as_slice()), (6, b"c")] {
            legacy.extend_from_slice(&at_ms.to_le_bytes());
            legacy.extend_from_slice(&(update.len() as u32).to_le_bytes());
            legacy.extend_from_slice(update);
        }
        let all = decode(1, &legacy, 0).unwrap();
        let read: Vec<(u64, u64, &[u8])> = all
            .iter()
            .map(|e| (e.at_ms, e.author, e.update.as_slice()))
            .collect();
        assert_eq!(read, [(5, 0, b"ab".as_slice()), (6, 0, b"c".as_slice())]);
    }
}
