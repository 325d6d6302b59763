//! Name hygiene: the names of users, roles, locks and other resources must look like what they
//! are. A role `access ` (trailing space) beside `access`, a user `аlice` whose first letter is
//! Cyrillic, or a name hiding a right-to-left override would let one principal pass for another
//! in a listing, an audit log or a role map. Such names are refused when they are created, with a
//! message that names the offending character and its position.
//!
//! Rules (in the order they are checked):
//! 1. no leading or trailing white space;
//! 2. no control characters, no invisible formatting characters (zero-width joiners, bidi
//!    embeddings, overrides and isolates, the byte-order mark, the soft hyphen) and no white
//!    space other than an ASCII space;
//! 3. not `.` or `..`;
//! 4. letters of one script, or of a combination Unicode's "moderately restrictive" profile
//!    (UTS #39 §5.2) accepts: Latin with Han and the Japanese kana, Latin with Han and Bopomofo,
//!    Latin with Han and Hangul, or Latin with one other script that is neither Cyrillic nor
//!    Greek (the two that are confusable with Latin letter for letter).

use unicode_script::{Script, UnicodeScript};

use crate::error::{Error, Result};

/// Characters that change how text is displayed without being visible themselves.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'                      // soft hyphen
        | '\u{061C}'                    // Arabic letter mark
        | '\u{180E}'                    // Mongolian vowel separator
        | '\u{200B}'..='\u{200F}'       // zero width space/non-joiner/joiner, LRM, RLM
        | '\u{202A}'..='\u{202E}'       // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}'       // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}'       // bidi isolates
        | '\u{FEFF}'                    // byte-order mark
        | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
    )
}

/// A character for messages: `'x' (U+0078)`, or just the code point for invisible ones.
pub fn describe_char(c: char) -> String {
    if c.is_control() || is_invisible_format(c) || c.is_whitespace() {
        format!("U+{:04X}", u32::from(c))
    } else {
        format!("'{c}' (U+{:04X})", u32::from(c))
    }
}

/// Checks a name; `what` says what it names in the message (`role name`, `user name`).
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let bad = |msg: String| Err(Error::bad_parameter(format!("{what} {name:?} {msg}")));
    if let Some(c) = name.chars().next().filter(|c| c.is_whitespace()) {
        return bad(format!("starts with white space ({}); remove it", describe_char(c)));
    }
    if let Some(c) = name.chars().last().filter(|c| c.is_whitespace()) {
        let pos = name.chars().count();
        return bad(format!("ends with white space ({} at position {pos}); remove it", describe_char(c)));
    }
    for (i, c) in name.chars().enumerate() {
        let pos = i + 1;
        if c.is_control() {
            return bad(format!("contains the control character {} at position {pos}; remove it", describe_char(c)));
        }
        if is_invisible_format(c) {
            return bad(format!(
                "contains the invisible formatting character {} at position {pos} (it can make the name display as another); remove it",
                describe_char(c)
            ));
        }
        if c.is_whitespace() && c != ' ' {
            return bad(format!("contains the white space character {} at position {pos}; use a plain space or none", describe_char(c)));
        }
    }
    if name == "." || name == ".." {
        return bad("is not a valid name; choose another".into());
    }
    check_scripts(name).or_else(bad)
}

/// The script of a letter, or None for characters every script shares (digits, punctuation,
/// combining marks).
fn script_of(c: char) -> Option<Script> {
    match c.script() {
        Script::Common | Script::Inherited | Script::Unknown => None,
        s => Some(s),
    }
}

/// Whether a set of scripts is one UTS #39 calls at most moderately restrictive.
fn allowed_combination(scripts: &[Script]) -> bool {
    let others: Vec<Script> = scripts.iter().copied().filter(|s| *s != Script::Latin).collect();
    let within = |set: &[Script]| others.iter().all(|s| set.contains(s));
    match others.len() {
        0 => true,
        1 if scripts.len() == 1 => true, // a single non-Latin script
        _ if within(&[Script::Han, Script::Hiragana, Script::Katakana]) => true,
        _ if within(&[Script::Han, Script::Bopomofo]) => true,
        _ if within(&[Script::Han, Script::Hangul]) => true,
        1 => !matches!(others[0], Script::Cyrillic | Script::Greek),
        _ => false,
    }
}

/// Refuses a mix of scripts that could pass for another name, naming the first character
/// that is not of the name's main script.
fn check_scripts(name: &str) -> std::result::Result<(), String> {
    let mut scripts: Vec<Script> = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    for s in name.chars().filter_map(script_of) {
        match scripts.iter().position(|x| *x == s) {
            Some(i) => counts[i] += 1,
            None => {
                scripts.push(s);
                counts.push(1);
            }
        }
    }
    if allowed_combination(&scripts) {
        return Ok(());
    }
    // The main script is the most frequent one (ties: the first seen).
    let main = counts.iter().enumerate().max_by_key(|(i, n)| (**n, usize::MAX - i)).map(|(i, _)| scripts[i]).unwrap_or(Script::Latin);
    let (pos, c, s) =
        name.chars().enumerate().find_map(|(i, c)| script_of(c).filter(|s| *s != main).map(|s| (i + 1, c, s))).unwrap_or((0, ' ', main));
    Err(format!(
        "mixes scripts: {} at position {pos} is {}, the rest is {}; a name that mixes these scripts can pass for another, so use letters of one script",
        describe_char(c),
        s.full_name(),
        main.full_name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(name: &str) -> String {
        check_name("role name", name).err().map(|e| e.message).unwrap_or_default()
    }

    #[test]
    fn ordinary_names_pass() {
        for ok in [
            "access",
            "visitor",
            "alice@example.com",
            "dc7cee9d-fe5e-4534-a90d-db770f0234a1",
            "my role",
            "leaf.example.com",
            "алиса",
            "日本語チーム",
            "team-東京",
            "ελληνικά",
            "hebrew-עברית",
            "a",
            "...x",
        ] {
            assert!(check_name("role name", ok).is_ok(), "{ok}: {}", msg(ok));
        }
    }

    #[test]
    fn white_space_at_either_end_is_refused() {
        assert!(msg("access ").contains("ends with white space (U+0020 at position 7)"), "{}", msg("access "));
        assert!(msg(" access").contains("starts with white space"), "{}", msg(" access"));
        assert!(msg("access\u{00A0}").contains("ends with white space (U+00A0"), "{}", msg("access\u{00A0}"));
    }

    #[test]
    fn control_and_invisible_characters_are_refused() {
        assert!(msg("ac\tcess").contains("control character U+0009 at position 3"), "{}", msg("ac\tcess"));
        assert!(msg("acc\u{202E}ss").contains("invisible formatting character U+202E at position 4"), "{}", msg("acc\u{202E}ss"));
        assert!(msg("a\u{200B}b").contains("U+200B at position 2"));
        assert!(msg("a\u{2066}b").contains("U+2066"));
        assert!(msg("a\u{FEFF}b").contains("U+FEFF"));
        assert!(msg("a\u{2003}b").contains("white space character U+2003 at position 2"), "{}", msg("a\u{2003}b"));
    }

    #[test]
    fn dot_names_are_refused() {
        assert!(msg(".").contains("is not a valid name"));
        assert!(msg("..").contains("is not a valid name"));
    }

    #[test]
    fn mixed_script_look_alikes_are_refused_with_the_character() {
        // Cyrillic і in admin.
        let m = msg("adm\u{0456}n");
        assert!(m.contains("'і' (U+0456) at position 4 is Cyrillic, the rest is Latin"), "{m}");
        // Cyrillic а at the start of alice.
        let m = check_name("user name", "\u{0430}lice").err().map(|e| e.message).unwrap_or_default();
        assert!(m.starts_with("user name \"аlice\" mixes scripts"), "{m}");
        assert!(m.contains("(U+0430) at position 1 is Cyrillic"), "{m}");
        // Greek omicron in root.
        assert!(msg("r\u{03BF}ot").contains("is Greek, the rest is Latin"), "{}", msg("r\u{03BF}ot"));
        // Cyrillic and Greek together.
        assert!(!msg("\u{0430}\u{03B1}").is_empty());
    }
}
