//! Text from a torrent or a tracker made safe to print: names, paths, comments, URLs and
//! tracker messages are chosen by whoever made the torrent or runs the tracker, and printed
//! raw, an ESC sequence in them drives the reader's terminal (moves the cursor, rewrites
//! what is shown, sets the window title, on some terminals writes files).
//!
//! [`escape`] writes every character that is not plainly visible as an escape:
//! controls (C0, DEL, C1) as `\t`, `\n`, `\r` or `\u{1b}`, and the invisible characters that
//! reorder or hide text (bidirectional controls, zero-width spaces, line and paragraph
//! separators, the byte-order mark, tag characters) as `\u{202e}`; a backslash becomes `\\`,
//! so the escaped text reads back unambiguously. Everything else, letters of any script,
//! emoji and combining marks included, is kept as it is.
//!
//! ```
//! use bt_proto::encoding::printable::escape;
//! assert_eq!(escape("Ubuntu 24.04 ✓"), "Ubuntu 24.04 ✓");
//! assert_eq!(escape("a\u{1b}[2Jb\tc\\d"), "a\\u{1b}[2Jb\\tc\\\\d");
//! assert_eq!(escape("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
//! ```

use std::borrow::Cow;
use std::fmt::Write;

/// Whether [`escape`] writes `c` as an escape: a control character (`Cc`), a backslash, or
/// an invisible character that changes how the text around it reads.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\\'
            // Arabic letter mark, zero-width space, left-to-right and right-to-left marks.
            | '\u{061c}'
            | '\u{200b}'
            | '\u{200e}'
            | '\u{200f}'
            // Line and paragraph separators, bidirectional embeddings and overrides.
            | '\u{2028}'..='\u{202e}'
            // Word joiner and invisible operators; bidirectional isolates; deprecated
            // format controls.
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            // Byte-order mark (zero-width no-break space), interlinear annotation.
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            // Tag characters: invisible, and used to hide text in plain sight.
            | '\u{e0000}'..='\u{e007f}'
        )
}

/// `text` with every character [`needs_escape`] names written as an escape; borrowed when
/// there is none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn controls_and_invisibles_are_escaped() {
        let cases = [
            ("plain", "plain"),
            ("", ""),
            ("\u{1b}]0;title\u{7}", "\\u{1b}]0;title\\u{7}"),
            ("a\nb\rc\td\0", "a\\nb\\rc\\td\\u{0}"),
            ("del\u{7f} csi\u{9b}", "del\\u{7f} csi\\u{9b}"),
            ("back\\slash", "back\\\\slash"),
            ("\u{202e}gpj.exe", "\\u{202e}gpj.exe"),
            ("zero\u{200b}width", "zero\\u{200b}width"),
            ("\u{feff}bom", "\\u{feff}bom"),
            ("tag\u{e0041}", "tag\\u{e0041}"),
            // Kept: scripts, emoji sequences (zero-width joiner), combining marks.
            (
                "Ελληνικά 日本語 \u{645}\u{200c}\u{647}",
                "Ελληνικά 日本語 \u{645}\u{200c}\u{647}",
            ),
            ("👩\u{200d}💻 e\u{301}", "👩\u{200d}💻 e\u{301}"),
        ];
        for (raw, escaped) in cases {
            assert_eq!(escape(raw), escaped, "{raw:?}");
        }
        assert!(matches!(escape("nothing to do"), Cow::Borrowed(_)));
    }

    proptest! {
        #[test]
        fn escaped_text_holds_nothing_to_escape_but_its_backslashes(s in any::<String>()) {
            let e = escape(&s);
            prop_assert!(e.chars().all(|c| c == '\\' || !needs_escape(c)), "{:?}", e);
            prop_assert_eq!(e == s, !s.chars().any(needs_escape));
        }
    }
}
