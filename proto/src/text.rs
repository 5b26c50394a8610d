//! Text that came from a remote site (titles, yt-dlp's error lines) made safe for a terminal or a chat.

/// Drops control characters, terminal escape sequences and bidirectional overrides; line breaks and tabs become
/// spaces. A title that rewrote an operator's terminal or reversed a chat line would otherwise pass through as is.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() || is_bidi_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Unicode's explicit direction marks and overrides.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Skips the rest of an escape sequence: CSI (`ESC [ … final`), OSC (`ESC ] … BEL` or `ESC ] … ESC \`), or one
/// character.
fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        Some('[') => {
            for c in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    break;
                }
            }
        }
        Some(']') => {
            while let Some(c) = chars.next() {
                if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                    break;
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_overrides_are_removed() {
        assert_eq!(clean("plain title – ünïcode ✓"), "plain title – ünïcode ✓");
        assert_eq!(clean("\u{1b}[2J\u{1b}[31mred\u{1b}[0m"), "red");
        assert_eq!(clean("a\u{1b}]0;owned\u{7}b"), "ab");
        assert_eq!(clean("a\u{1b}]8;;http://x\u{1b}\\link"), "alink");
        assert_eq!(clean("line\nbreak\ttab\rcr"), "line break tab cr");
        assert_eq!(clean("bell\u{7}del\u{7f}nul\u{0}c1\u{9b}"), "belldelnulc1");
        assert_eq!(clean("file\u{202e}4pm.exe"), "file4pm.exe");
        assert_eq!(clean("a\u{61c}b\u{2067}c"), "abc");
        assert_eq!(clean("trailing escape \u{1b}"), "trailing escape ");
    }
}
