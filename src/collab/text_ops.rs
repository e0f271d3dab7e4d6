//! Text changes between the editor and the document, in UTF-16 offsets: what
//! Monaco reports (`EditorChange`), what the document reports (`TextOp`, a
//! delta), and how a local cursor moves through a remote delta.

use serde::{Deserialize, Serialize};
use yrs::{types::Delta, Out};

/// One change Monaco reports: replace `length` units at `offset` with `text`.
/// Offsets refer to the text before the event, like Monaco's `rangeOffset`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct EditorChange {
    pub offset: u32,
    pub length: u32,
    pub text: String,
}

/// One step of a document delta, in UTF-16 code units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum TextOp {
    #[serde(rename = "r")]
    Retain(u32),
    #[serde(rename = "i")]
    Insert(String),
    #[serde(rename = "d")]
    Delete(u32),
}

/// Length of a string in UTF-16 code units.
pub fn utf16_len(text: &str) -> u32 {
    text.encode_utf16().count() as u32
}

/// Converts a yrs text delta into owned ops (non-string inserts are ignored:
/// the code text only holds strings).
pub fn ops_from_delta(delta: &[Delta]) -> Vec<TextOp> {
    delta
        .iter()
        .filter_map(|step| match step {
            Delta::Retain(n, _) => Some(TextOp::Retain(*n)),
            Delta::Deleted(n) => Some(TextOp::Delete(*n)),
            Delta::Inserted(Out::Any(yrs::Any::String(s)), _) => {
                Some(TextOp::Insert(s.to_string()))
            }
            Delta::Inserted(_, _) => None,
        })
        .collect()
}

/// Where a local caret at `offset` ends up after a remote delta. Text inserted
/// exactly at the caret goes after it (the caret stays put), text deleted before
/// it pulls it left.
pub fn transform_offset(offset: u32, ops: &[TextOp]) -> u32 {
    let mut position = 0u32;
    let mut caret = offset;
    for op in ops {
        match op {
            TextOp::Retain(n) => position += n,
            TextOp::Insert(text) => {
                let len = utf16_len(text);
                if position < caret {
                    caret += len;
                }
                position += len;
            }
            TextOp::Delete(n) => {
                if position < caret {
                    caret -= (*n).min(caret - position);
                }
            }
        }
    }
    caret
}

/// Applies ops to a string (UTF-16 offsets): what the editor does with them.
pub fn apply_ops(text: &str, ops: &[TextOp]) -> String {
    let units: Vec<u16> = text.encode_utf16().collect();
    let mut out: Vec<u16> = Vec::with_capacity(units.len());
    let mut index = 0usize;
    for op in ops {
        match op {
            TextOp::Retain(n) => {
                let end = (index + *n as usize).min(units.len());
                out.extend_from_slice(&units[index..end]);
                index = end;
            }
            TextOp::Insert(s) => out.extend(s.encode_utf16()),
            TextOp::Delete(n) => index = (index + *n as usize).min(units.len()),
        }
    }
    out.extend_from_slice(&units[index..]);
    String::from_utf16_lossy(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carets_move_with_text_before_them_only() {
        // "hello world", caret after "hello" (5).
        let insert_before = [TextOp::Insert(">> ".into())];
        assert_eq!(transform_offset(5, &insert_before), 8);
        let insert_after = [TextOp::Retain(6), TextOp::Insert("big ".into())];
        assert_eq!(transform_offset(5, &insert_after), 5);
        let insert_at = [TextOp::Retain(5), TextOp::Insert("!".into())];
        assert_eq!(transform_offset(5, &insert_at), 5);
        let delete_before = [TextOp::Delete(2)];
        assert_eq!(transform_offset(5, &delete_before), 3);
        let delete_around = [TextOp::Retain(3), TextOp::Delete(5)];
        assert_eq!(transform_offset(5, &delete_around), 3);
        let surrogate = [TextOp::Insert("😀".into())];
        assert_eq!(transform_offset(1, &surrogate), 3);
    }

    #[test]
    fn applying_ops_matches_the_document() {
        let ops = [
            TextOp::Retain(1),
            TextOp::Insert("😀".into()),
            TextOp::Retain(1),
            TextOp::Delete(1),
            TextOp::Insert("漢".into()),
        ];
        assert_eq!(apply_ops("abc", &ops), "a😀b漢");
        assert_eq!(utf16_len("a😀b漢"), 5);
    }
}
