//! Text rules shared by the server and the browser: the one change that turns
//! one text into another, in UTF-16 units (as Yjs and Monaco count), never
//! splitting a surrogate pair.

/// Replace `removed` UTF-16 units at `at` with `inserted`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splice {
    pub at: usize,
    pub removed: usize,
    pub inserted: String,
}

/// The single change from `old` to `new`: their common start and end are
/// kept, the middle replaced. `None` when they are equal. The middle always
/// holds whole characters (an emoji's two units are never cut apart).
pub fn splice_between(old: &str, new: &str) -> Option<Splice> {
    if old == new {
        return None;
    }
    let is_high = |unit: u16| (0xD800..0xDC00).contains(&unit);
    let is_low = |unit: u16| (0xDC00..0xE000).contains(&unit);
    let old: Vec<u16> = old.encode_utf16().collect();
    let new: Vec<u16> = new.encode_utf16().collect();
    let mut prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    if prefix > 0 && is_high(old[prefix - 1]) {
        prefix -= 1;
    }
    let mut suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    if suffix > 0 && is_low(old[old.len() - suffix]) {
        suffix -= 1;
    }
    Some(Splice {
        at: prefix,
        removed: old.len() - prefix - suffix,
        inserted: String::from_utf16_lossy(&new[prefix..new.len() - suffix]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_differing_middle_is_replaced_and_pairs_stay_whole() {
        assert_eq!(splice_between("abc", "abc"), None);
        assert_eq!(
            splice_between("héllo 👋 world", "héllo 🌍 world"),
            Some(Splice {
                at: 6,
                removed: 2,
                inserted: "🌍".into()
            })
        );
        // 👋 and 😀 share their high surrogate: the pair is replaced whole.
        assert_eq!(
            splice_between("a👋", "a😀"),
            Some(Splice {
                at: 1,
                removed: 2,
                inserted: "😀".into()
            })
        );
        // 😀 and 🙀 share their low surrogate.
        assert_eq!(
            splice_between("😀b", "🙀b"),
            Some(Splice {
                at: 0,
                removed: 2,
                inserted: "🙀".into()
            })
        );
    }
}
