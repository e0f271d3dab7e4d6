//! Display names: the one rule for making a name someone typed safe to show
//! to everyone else. The server applies it to presence it relays, the browser
//! to what it shows, so a stock client's name is cleaned too.

/// Longest display name kept, in characters.
pub const MAX_NAME_CHARS: usize = 40;

/// Characters that change how text around them is shown without being seen
/// themselves: bidirectional embeddings, overrides and isolates (which can
/// make "Eve" read as "evE" or flip the text after it), and zero-width
/// characters (which make two names look alike).
pub fn is_hidden_formatting(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}' // embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // isolates
            | '\u{061C}' // Arabic letter mark
            | '\u{FEFF}' // zero-width no-break space
            | '\u{180E}' // Mongolian vowel separator
    )
}

/// Whether `text` holds anything [`clean_display_name`] would remove (other
/// than surrounding whitespace and length).
pub fn has_hidden_characters(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() || is_hidden_formatting(c))
}

/// A display name made safe to show: control and hidden formatting characters
/// removed, whitespace trimmed, length capped; empty names become "Anonymous".
pub fn clean_display_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control() && !is_hidden_formatting(*c))
        .take(MAX_NAME_CHARS)
        .collect::<String>()
        .trim()
        .to_owned();
    if cleaned.is_empty() {
        "Anonymous".to_owned()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_whitespace_and_length_are_tamed() {
        assert_eq!(clean_display_name("  Ada\u{7}  "), "Ada");
        assert_eq!(clean_display_name(""), "Anonymous");
        assert_eq!(
            clean_display_name(&"x".repeat(100)).chars().count(),
            MAX_NAME_CHARS
        );
    }

    #[test]
    fn bidirectional_overrides_and_zero_width_characters_are_removed() {
        // "\u{202E}evE" shows as "Eve" reversed; zero-width joiners hide in "Ad\u{200B}a".
        assert_eq!(clean_display_name("\u{202E}evE"), "evE");
        assert_eq!(clean_display_name("Ad\u{200B}a\u{2066}\u{FEFF}"), "Ada");
        assert_eq!(clean_display_name("\u{200D}\u{200E}"), "Anonymous");
        assert!(has_hidden_characters("a\u{2069}"));
        assert!(!has_hidden_characters("Zoë 李"));
        // Letters of right-to-left scripts are names, not formatting.
        assert_eq!(clean_display_name("سارا"), "سارا");
    }
}
