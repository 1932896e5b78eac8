//! Regular expressions for the OpenAPI document that accept exactly what the server accepts.
//!
//! The server trims with Rust's notion of whitespace and judges characters with `char`'s own
//! predicates (`is_uppercase`, `is_alphabetic`, …); `\s`, `\p{Lu}` and friends mean something
//! else in each regex dialect a client may use (ECMA-262, Python, Rust). So every character
//! class here is computed from the very predicate the server calls and spelled with literal
//! characters and ranges, which every dialect reads alike. A generated client or a fuzzer then
//! produces only values the server takes, and every value the server refuses breaks a pattern.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock, PoisonError};

/// A set of characters, as the predicate the server applies.
pub type Chars = fn(char) -> bool;

/// The body (between `[` and `]`) of a class of every character in `set`, computed once per
/// set: the scan covers every `char`, a few milliseconds. A set larger than its complement is
/// spelled as the negated complement: generators (Hypothesis, which schemathesis uses) expand
/// a class character by character, so `[^\n]` costs one character where `[\x00-\u{10ffff}]`
/// costs a million.
#[must_use]
pub fn class(set: Chars) -> &'static str {
    static CLASSES: OnceLock<Mutex<HashMap<usize, &'static str>>> = OnceLock::new();
    let classes = CLASSES.get_or_init(Mutex::default);
    let mut classes = classes.lock().unwrap_or_else(PoisonError::into_inner);
    classes.entry(set as usize).or_insert_with(|| {
        let members = (0..=u32::from(char::MAX))
            .filter_map(char::from_u32)
            .filter(|c| set(*c))
            .count();
        let all = (0..=u32::from(char::MAX))
            .filter_map(char::from_u32)
            .count();
        let body = if members * 2 > all {
            format!("^{}", class_body(|c| !set(c)))
        } else {
            class_body(set)
        };
        Box::leak(body.into_boxed_str())
    })
}

fn class_body(set: impl Fn(char) -> bool) -> String {
    let mut body = String::new();
    let mut run: Option<(char, char)> = None;
    for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
        if !set(c) {
            continue;
        }
        run = match run {
            Some((from, to)) if u32::from(to) + 1 == u32::from(c) => Some((from, c)),
            Some((from, to)) => {
                push_range(&mut body, from, to);
                Some((c, c))
            }
            None => Some((c, c)),
        };
    }
    if let Some((from, to)) = run {
        push_range(&mut body, from, to);
    }
    body
}

fn push_range(body: &mut String, from: char, to: char) {
    push_literal(body, from);
    if to != from {
        if u32::from(to) > u32::from(from) + 1 {
            body.push('-');
        }
        push_literal(body, to);
    }
}

/// One character inside a class: printable ones as themselves, class syntax and controls
/// escaped (`\xHH` reads alike in ECMA-262, Python and Rust).
fn push_literal(body: &mut String, c: char) {
    match c {
        '\\' | ']' | '[' | '^' | '-' => {
            body.push('\\');
            body.push(c);
        }
        c if c.is_control() => {
            let _ = write!(body, "\\x{:02x}", u32::from(c));
        }
        c => body.push(c),
    }
}

/// Any single character (`.` skips line breaks, and different ones per dialect).
pub const ANY: &str = "(?:[^\\n]|\\n)";

/// `core` with any whitespace around it, as the whole value: what the server checks after
/// trimming. `core` must begin and end with a character that is not whitespace, so that the
/// whitespace around it is exactly what trimming removes.
#[must_use]
pub fn trimmed(core: &str) -> String {
    let ws = class(char::is_whitespace);
    format!("^[{ws}]*{core}[{ws}]*$")
}

/// One character of `set`: its class, or [`ANY`] for every character (an empty negated
/// class, `[^]`, is ECMA-262 alone).
#[must_use]
pub fn one_of(set: Chars) -> String {
    match class(set) {
        "^" => ANY.to_owned(),
        body => format!("[{body}]"),
    }
}

/// `min..=max` (at least 1) characters of `inner`, beginning and ending with `edge`.
fn core(inner: Chars, edge: Chars, min: usize, max: usize) -> String {
    let (inner, edge) = (one_of(inner), one_of(edge));
    match (min.max(1), max) {
        (_, 0) => String::new(),
        (1, 1) => edge,
        (1, max) => format!("{edge}(?:{inner}{{0,{}}}{edge})?", max - 2),
        (min, max) => format!("{edge}{inner}{{{},{}}}{edge}", min - 2, max - 2),
    }
}

/// `min..=max` characters of `inner` once trimmed, the first and last of `edge` (which must
/// hold no whitespace); `min` 0 admits blank values.
#[must_use]
pub fn trimmed_length(inner: Chars, edge: Chars, min: usize, max: usize) -> String {
    if min == 0 {
        blank_or(inner, edge, 1, max)
    } else {
        trimmed(&core(inner, edge, min, max))
    }
}

/// Blank, or as [`trimmed_length`] (a field where blank means "clear").
#[must_use]
pub fn blank_or(inner: Chars, edge: Chars, min: usize, max: usize) -> String {
    trimmed(&format!("(?:{})?", core(inner, edge, min, max)))
}

/// Not whitespace: the first and last character of a trimmed value.
pub fn solid(c: char) -> bool {
    !c.is_whitespace()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(pattern: &str) -> regex::Regex {
        regex::Regex::new(pattern).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn classes_escape_their_syntax_and_controls() {
        let mut body = String::new();
        for c in ['-', ']', '\\', '^', '\u{0}', '\u{85}', 'é'] {
            push_literal(&mut body, c);
        }
        assert_eq!(body, "\\-\\]\\\\\\^\\x00\\x85é");
        assert_eq!(class_body(|c| c.is_ascii_digit() || c == 'a'), "0-9a");
        assert_eq!(class_body(|c| c == 'x' || c == 'y'), "xy");
    }

    #[test]
    fn large_sets_are_spelled_as_their_complement() {
        assert_eq!(class(solid), format!("^{}", class(char::is_whitespace)));
        let solid = full(&format!("^[{}]$", class(solid)));
        assert!(solid.is_match("a") && solid.is_match("\u{10ffff}") && !solid.is_match("\u{3000}"));
    }

    #[test]
    fn whitespace_is_what_trim_removes() {
        let ws = full(&format!("^[{}]$", class(char::is_whitespace)));
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            assert_eq!(ws.is_match(&c.to_string()), c.is_whitespace(), "{c:?}");
        }
    }

    #[test]
    fn a_trimmed_length_is_counted_without_the_whitespace_around() {
        let any = |_: char| true;
        let pattern = full(&trimmed_length(any, solid, 2, 4));
        for (value, ok) in [
            ("ab", true),
            ("  abcd \u{3000}", true),
            ("a", false),
            ("abcde", false),
            (" a b ", true),
            ("\u{1c}ab", true),
            ("   ", false),
        ] {
            let trimmed = value.trim().chars().count();
            assert_eq!((2..=4).contains(&trimmed), ok, "{value:?}");
            assert_eq!(pattern.is_match(value), ok, "{value:?}");
        }
        let blank = full(&trimmed_length(any, solid, 0, 3));
        assert!(blank.is_match("  ") && blank.is_match(" abc ") && !blank.is_match("abcd"));
    }
}
