//! Text from data (product titles and descriptions, LLM output, file contents) made inert before
//! it reaches a terminal: control characters would let an item's text drive the annotator's
//! terminal (ESC sequences that move the cursor, clear the screen or write the clipboard with
//! OSC 52), and bidi overrides would make it read differently from what it is. Each is shown
//! as a visible stand-in instead; nothing is dropped.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is: C0 controls, DEL, C1 controls, and the
/// bidi embeddings, overrides and isolates.
fn hostile(c: char, keep_lines: bool) -> bool {
    match c {
        '\n' | '\t' => !keep_lines,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

/// The visible stand-in: a control picture for C0 controls and DEL (ESC shows as ␛), else U+FFFD.
fn stand_in(c: char) -> char {
    match c {
        '\u{0}'..='\u{1f}' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
        '\u{7f}' => '\u{2421}',
        _ => '\u{fffd}',
    }
}

fn replace(s: &str, keep_lines: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| hostile(c, keep_lines)) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if hostile(c, keep_lines) {
                    stand_in(c)
                } else {
                    c
                }
            })
            .collect(),
    )
}

/// One line of text for a terminal cell or a one-line message: every control character
/// (newlines and tabs too) and bidi control replaced by a visible stand-in.
pub fn inert(s: &str) -> Cow<'_, str> {
    replace(s, false)
}

/// Text printed as lines (`show`, error messages): as `inert`, but newlines and tabs stay.
pub fn inert_lines(s: &str) -> Cow<'_, str> {
    replace(s, true)
}

/// The words of a search: runs of letters and digits. Everything else (quotes, `*`, `%`, `_`,
/// `-`, parentheses) separates words, so no character typed into a search box is syntax to the
/// full-text index or to LIKE; operators like `OR` and `NEAR` are words like any other.
pub fn search_words(search: &str) -> Vec<String> {
    search
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Lower case, letters and digits only, one space between words: what the audit's grounding
/// and the augmentation's query words compare.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for c in text.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_bidi_overrides_are_shown_not_obeyed() {
        let osc52 = "Cap \u{1b}]52;c;cm0gLXJmIH4=\u{7}x";
        assert_eq!(inert(osc52), "Cap ␛]52;c;cm0gLXJmIH4=␇x");
        assert_eq!(inert("a\u{1b}[2J\u{1b}[Hb"), "a␛[2J␛[Hb");
        assert_eq!(inert("evil\u{202e}gpj.exe"), "evil\u{fffd}gpj.exe");
        assert_eq!(inert("c1 \u{9b}31m"), "c1 \u{fffd}31m");
        assert_eq!(inert("del\u{7f}"), "del␡");
        assert_eq!(inert("two\nlines\tand tab"), "two␊lines␉and tab");
        assert_eq!(inert_lines("two\nlines\tand \u{1b}c"), "two\nlines\tand ␛c");
        assert_eq!(
            search_words("\"fitbit* NEAR(band) -OR 100%_x"),
            ["fitbit", "NEAR", "band", "OR", "100", "x"]
        );
        assert!(search_words("%_*\"-").is_empty());
        // Plain text, accents and emoji are borrowed as they are.
        assert!(matches!(inert("Crème brûlée 🍮"), Cow::Borrowed(_)));
    }
}
