//! The update log's row format. A row holds consecutive entries of one session's
//! log, the updates one journal fold brought in for it: a fold then costs one
//! B-tree insert per session instead of one per update, which was most of the
//! fold thread's CPU under load. The row's key is (session, seq of its first
//! entry); entries number on from there.
//!
//! Layout: entry count (u32 little-endian), then per entry its timestamp (u64
//! LE), the update's length (u32 LE) and the update.

use super::LoggedUpdate;

const COUNT_BYTES: usize = 4;
const ENTRY_HEADER_BYTES: usize = 8 + 4;

/// One row holding `entries` (timestamp in ms, update), in log order.
pub fn encode<'a>(entries: impl ExactSizeIterator<Item = (u64, &'a [u8])>) -> Vec<u8> {
    let count = entries.len();
    let mut row = Vec::with_capacity(COUNT_BYTES + count * (ENTRY_HEADER_BYTES + 64));
    row.extend_from_slice(&(count as u32).to_le_bytes());
    for (at_ms, update) in entries {
        row.extend_from_slice(&at_ms.to_le_bytes());
        row.extend_from_slice(&(update.len() as u32).to_le_bytes());
        row.extend_from_slice(update);
    }
    row
}

/// How many entries `row` holds.
pub fn entry_count(row: &[u8]) -> Result<u64, String> {
    let count = row
        .get(..COUNT_BYTES)
        .ok_or_else(|| "log row is truncated".to_owned())?;
    Ok(u64::from(u32::from_le_bytes(
        count.try_into().expect("4 bytes"),
    )))
}

/// Appends to `out` the entries of `row` (whose first entry is `first_seq`)
/// numbered above `after_seq`.
pub fn decode_after(
    first_seq: u64,
    row: &[u8],
    after_seq: u64,
    out: &mut Vec<LoggedUpdate>,
) -> Result<(), String> {
    let count = entry_count(row)?;
    let mut rest = &row[COUNT_BYTES..];
    for seq in first_seq..first_seq + count {
        let truncated = || format!("log entry {seq} is truncated");
        if rest.len() < ENTRY_HEADER_BYTES {
            return Err(truncated());
        }
        let (header, tail) = rest.split_at(ENTRY_HEADER_BYTES);
        let at_ms = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(header[8..].try_into().expect("4 bytes")) as usize;
        if tail.len() < len {
            return Err(truncated());
        }
        let (update, tail) = tail.split_at(len);
        if seq > after_seq {
            out.push(LoggedUpdate {
                seq,
                at_ms,
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
                .map(|(i, u)| (1_000 + i as u64, *u)),
        );
        assert_eq!(entry_count(&row), Ok(3));
        let all = decode(41, &row, 0).unwrap();
        let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [41, 42, 43]);
        assert_eq!(all[1].at_ms, 1_001);
        assert_eq!(all[1].update, b"");
        assert_eq!(all[2].update, vec![0xff; 300]);
        // A snapshot covering 42 leaves only the last entry to replay.
        let later = decode(41, &row, 42).unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].seq, 43);
    }

    #[test]
    fn damaged_rows_are_errors_not_panics() {
        let row = encode([(7u64, b"update".as_slice())].into_iter());
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
}
