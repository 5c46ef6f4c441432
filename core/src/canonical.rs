//! The canonical form of a request path, the only form rules are matched on.
//!
//! An upstream application may decode, fold or ignore parts of a path that a naive matcher
//! compares literally; each such difference is a way around a rule. So every request path
//! and every rule path is brought to one form, chosen so that *any* spelling an upstream
//! could resolve to a privileged path canonicalises to that path:
//!
//! 1. The query (`?…`) and fragment (`#…`) are cut off, before any decoding.
//! 2. The path must start with `/` (origin form); anything else is an error.
//! 3. Percent-encoding is decoded completely, including encoded `/`, `\`, `;` and `%`
//!    itself, repeatedly (an upstream may decode twice: `%2574` → `%74` → `t`), at most
//!    [`MAX_DECODE_ROUNDS`] times; a path still encoded after that is an error. A `%` in
//!    the raw path that is not followed by two hex digits is an error.
//! 4. The decoded bytes must be UTF-8 without control characters (`NUL`, `CR`, `LF`, …).
//!    A decoded `?` or `#` ends the path as a raw one does (an upstream that decodes and
//!    re-parses would read the rest as query or fragment).
//! 5. `\` is a separator like `/` (IIS and some proxies treat it so).
//! 6. In every segment, a `;` and what follows it is removed (Tomcat/Jetty path
//!    parameters: `/transfer;jsessionid=1` → `/transfer`, and `/..;/` is `/../`).
//! 7. Empty segments are removed (`//` → `/`, and the trailing slash: `/transfer/` →
//!    `/transfer`), `.` segments are removed and `..` removes the segment before it
//!    (RFC 3986 §5.2.4; `..` at the root stays at the root).
//!
//! Case is kept: `/Transfer` stays `/Transfer`. Case-insensitive upstreams are handled by
//! the policy index, which matches a path both as written and case-folded and lets the
//! stricter rule govern (see [`crate::policy::PolicyIndex::lookup`]).
//!
//! The canonical path is used for matching only; the request is passed upstream as it
//! came. Canonicalising an already canonical path returns it unchanged without
//! allocating.

use std::borrow::Cow;

/// How many times percent-decoding is applied before a path that still decodes further
/// is refused.
pub const MAX_DECODE_ROUNDS: usize = 3;

/// Why a path has no canonical form. Every such path is refused on every rule (fail closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is empty or does not start with `/`.
    #[error("path does not start with `/`")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("invalid percent-encoding")]
    BadEscape,
    /// Still percent-encoded after [`MAX_DECODE_ROUNDS`] rounds of decoding.
    #[error("path is percent-encoded too many times")]
    TooDeeplyEncoded,
    /// The decoded path is not UTF-8.
    #[error("decoded path is not UTF-8")]
    NotUtf8,
    /// The decoded path contains a control character.
    #[error("decoded path contains a control character")]
    ControlCharacter,
}

impl PathError {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            PathError::NotAbsolute => "not_absolute",
            PathError::BadEscape => "bad_escape",
            PathError::TooDeeplyEncoded => "too_deeply_encoded",
            PathError::NotUtf8 => "not_utf8",
            PathError::ControlCharacter => "control_character",
        }
    }
}

/// The canonical form of `raw` (see the module documentation for the rules).
pub fn canonicalize(raw: &str) -> Result<Cow<'_, str>, PathError> {
    let path = match raw.find(['?', '#']) {
        Some(i) => &raw[..i],
        None => raw,
    };
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if is_canonical(path) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_fully(path.as_bytes())?;
    let text = String::from_utf8(decoded).map_err(|_| PathError::NotUtf8)?;
    if text.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter);
    }
    // A decoded `?` or `#` ends the path too: an upstream (or a proxy in front of it) that
    // decodes and re-parses the target would read what follows as query or fragment, so
    // `/transfer%3Fx` must govern like `/transfer`.
    let text = match text.find(['?', '#']) {
        Some(i) => &text[..i],
        None => text.as_str(),
    };
    Ok(Cow::Owned(normalize_segments(text)))
}

/// True when `path` needs no change: only unreserved characters and single `/`
/// separators, no dot segment and no trailing slash (except the root).
fn is_canonical(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.len() > 1 && bytes[bytes.len() - 1] == b'/' {
        return false;
    }
    let mut segment_start = true;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'/' => {
                if i > 0 && segment_start {
                    return false; // `//`
                }
                segment_start = true;
                continue;
            }
            b'.' if segment_start => return false, // possible `.`/`..` segment
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'~' | b'.' => {}
            // Characters that are neither special to us nor decoded: `{`/`}` keep
            // templates canonical, the sub-delims other than `;` pass as they are.
            b'{' | b'}' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'='
            | b':' | b'@' => {}
            _ => return false,
        }
        segment_start = false;
    }
    true
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// One round of percent-decoding. `strict`: a `%` without two hex digits is an error
/// (for the raw path); otherwise it is a literal `%` (in later rounds, where `%25`
/// decoded to a lone `%`). Returns the bytes and whether anything was decoded.
fn decode_round(input: &[u8], strict: bool) -> Result<(Vec<u8>, bool), PathError> {
    let mut out = Vec::with_capacity(input.len());
    let mut changed = false;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' {
            let pair = input
                .get(i + 1)
                .and_then(|&h| hex(h))
                .zip(input.get(i + 2).and_then(|&l| hex(l)));
            match pair {
                Some((h, l)) => {
                    out.push(h << 4 | l);
                    changed = true;
                    i += 3;
                    continue;
                }
                None if strict => return Err(PathError::BadEscape),
                None => {}
            }
        }
        out.push(b);
        i += 1;
    }
    Ok((out, changed))
}

fn decode_fully(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    let (mut bytes, mut changed) = decode_round(raw, true)?;
    let mut rounds = 1;
    while changed {
        let (next, again) = decode_round(&bytes, false)?;
        if !again {
            break;
        }
        rounds += 1;
        if rounds > MAX_DECODE_ROUNDS {
            return Err(PathError::TooDeeplyEncoded);
        }
        bytes = next;
        changed = again;
    }
    Ok(bytes)
}

/// Steps 5–7 on a decoded path.
fn normalize_segments(decoded: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split(['/', '\\']) {
        let segment = match segment.find(';') {
            Some(i) => &segment[..i],
            None => segment,
        };
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn canon(p: &str) -> String {
        canonicalize(p).unwrap().into_owned()
    }

    #[test]
    fn every_spelling_of_transfer_from_the_issue_is_transfer() {
        for p in [
            "/transfer",
            "//transfer",
            "/%74ransfer",
            "/info/../transfer",
            "/transfer/",
            "/transfer?x=1",
            "/transfer#frag",
            "/./transfer",
            "/transfer;jsessionid=abc",
            "/info/..;/transfer",
            "/info%2F..%2Ftransfer",
            "/info\\..\\transfer",
            "/%2574ransfer",
            "/%252574ransfer",
            "/transfer%3Fx=1",
            "/transfer%23frag",
            "/transfer%253F",
            "///transfer//",
            "/../transfer",
        ] {
            assert_eq!(canon(p), "/transfer", "{p}");
        }
    }

    #[test]
    fn canonical_paths_are_returned_borrowed() {
        for p in [
            "/",
            "/transfer",
            "/accounts/{id}/transfer",
            "/a.b/c-d_e~f",
            "/v1/x:y",
        ] {
            assert!(
                matches!(canonicalize(p), Ok(Cow::Borrowed(s)) if s == p),
                "{p}"
            );
        }
    }

    #[test]
    fn root_spellings_are_the_root() {
        for p in ["/", "//", "/.", "/..", "/a/..", "/;x", "/?q"] {
            assert_eq!(canon(p), "/", "{p}");
        }
    }

    #[test]
    fn malformed_paths_are_errors() {
        assert_eq!(canonicalize(""), Err(PathError::NotAbsolute));
        assert_eq!(canonicalize("transfer"), Err(PathError::NotAbsolute));
        assert_eq!(canonicalize("*"), Err(PathError::NotAbsolute));
        assert_eq!(canonicalize("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(canonicalize("/a%4"), Err(PathError::BadEscape));
        assert_eq!(canonicalize("/a%00b"), Err(PathError::ControlCharacter));
        assert_eq!(canonicalize("/a%0d%0ab"), Err(PathError::ControlCharacter));
        assert_eq!(canonicalize("/a%ff"), Err(PathError::NotUtf8));
        assert_eq!(canonicalize("/%25252574"), Err(PathError::TooDeeplyEncoded));
    }

    #[test]
    fn a_lone_percent_after_decoding_is_literal() {
        assert_eq!(canon("/files/100%25"), "/files/100%");
        assert_eq!(canon("/caf%C3%A9"), "/café");
    }

    /// A segment of characters an attacker might respell.
    fn segment() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_~-][a-zA-Z0-9._~-]{0,8}"
            .prop_filter("dot segments are not names", |s| s != "." && s != "..")
    }

    /// Ways to write one segment that an upstream would read as that segment.
    fn respell(seg: &str, choice: &[u8]) -> String {
        let mut out = String::new();
        for (i, c) in seg.chars().enumerate() {
            match choice.get(i).copied().unwrap_or(0) % 5 {
                1 => out.push_str(&format!("%{:02X}", c as u32)),
                2 => out.push_str(&format!("%{:02x}", c as u32)),
                3 => out.push_str(&format!("%25{:02X}", c as u32)),
                _ => out.push(c),
            }
        }
        out
    }

    proptest! {
        #[test]
        fn canonicalisation_is_idempotent(p in "/[ -~]{0,40}") {
            if let Ok(c) = canonicalize(&p) {
                let again = canonicalize(&c).unwrap();
                prop_assert_eq!(again.as_ref(), c.as_ref());
            }
        }

        #[test]
        fn canonical_paths_have_no_empty_dot_or_trailing_segments(p in "/[ -~]{0,40}") {
            if let Ok(c) = canonicalize(&p) {
                prop_assert!(c.starts_with('/'));
                prop_assert!(c == "/" || !c.ends_with('/'));
                prop_assert!(!c.contains("//"));
                prop_assert!(c.split('/').skip(1).all(|s| s != "." && s != ".."));
                prop_assert!(!c.contains(';') && !c.contains('\\'));
            }
        }

        #[test]
        fn no_respelling_of_a_path_escapes_its_canonical_form(
            segs in proptest::collection::vec(segment(), 1..5),
            choices in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..10), 5),
            noise in proptest::collection::vec(0u8..7, 5),
        ) {
            let canonical = format!("/{}", segs.join("/"));
            let mut spelled = String::new();
            for (i, s) in segs.iter().enumerate() {
                match noise[i % noise.len()] {
                    1 => spelled.push_str("//"),
                    2 => spelled.push_str("/./"),
                    3 => spelled.push_str("/decoy/../"),
                    4 if i == 0 => spelled.push_str("/\\"),
                    4 => spelled.push('\\'),
                    5 => spelled.push_str("/x;p=1/..;/"),
                    _ => spelled.push('/'),
                }
                spelled.push_str(&respell(s, &choices[i % choices.len()]));
                if noise[(i + 1) % noise.len()] == 6 {
                    spelled.push_str(";v=2");
                }
            }
            if noise[0] % 2 == 0 {
                spelled.push('/');
            }
            let got = canonicalize(&spelled).unwrap();
            prop_assert_eq!(got.as_ref(), canonical.as_str(), "spelled {}", spelled);
        }
    }
}
