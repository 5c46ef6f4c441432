//! Path templates: `/accounts/{id}/transfer`.
//!
//! A template is a canonical path whose segments are either literal text or a whole-segment
//! variable `{name}` (`name`: letters, digits, `_`). A variable matches exactly one
//! non-empty segment; a literal matches itself. A template matches a canonical path with
//! the same number of segments. Partial-segment variables (`/files/{name}.json`) and
//! anything else with a brace outside a whole-segment variable are refused as malformed,
//! so that no template means something other than it looks like.

use crate::canonical::canonicalize;

/// Why a template is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template is not a valid path.
    #[error("template is not a valid path: {0}")]
    Path(#[from] crate::canonical::PathError),
    /// A brace that is not part of a whole-segment `{name}`.
    #[error("segment `{0}` is not a literal or a whole-segment `{{name}}` variable")]
    BadSegment(String),
    /// The same variable twice.
    #[error("variable `{0}` appears twice")]
    DuplicateVariable(String),
    /// A template without any variable should be an `EXACT` rule.
    #[error("template has no variable")]
    NoVariable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Variable(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    segments: Vec<Segment>,
}

impl Template {
    /// Parses and canonicalises a template.
    pub fn parse(raw: &str) -> Result<Template, TemplateError> {
        let text = canonicalize(raw)?.into_owned();
        let mut segments = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for seg in text.split('/').skip(1).filter(|s| !s.is_empty()) {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let valid = !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !valid {
                    return Err(TemplateError::BadSegment(seg.to_owned()));
                }
                if names.contains(&name) {
                    return Err(TemplateError::DuplicateVariable(name.to_owned()));
                }
                names.push(name);
                segments.push(Segment::Variable(name.to_owned()));
            } else if seg.contains(['{', '}']) {
                return Err(TemplateError::BadSegment(seg.to_owned()));
            } else {
                segments.push(Segment::Literal(seg.to_owned()));
            }
        }
        if names.is_empty() {
            return Err(TemplateError::NoVariable);
        }
        Ok(Template { text, segments })
    }

    /// The canonical template text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Number of literal segments (a tie-breaker: `/a/{x}` is more specific than `/{y}/{x}`).
    pub fn literal_count(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }

    /// The literal path before the first variable (`/accounts` for
    /// `/accounts/{id}/transfer`): the area a malformed template item is taken to cover.
    pub fn literal_prefix(raw: &str) -> &str {
        let before = raw.split('{').next().unwrap_or("");
        match before.rfind('/') {
            Some(0) | None => "/",
            Some(i) => &before[..i],
        }
    }

    /// Does the canonical `path` match? Allocation-free.
    pub fn matches(&self, path: &str) -> bool {
        let mut parts = path.split('/').skip(1).filter(|s| !s.is_empty());
        for seg in &self.segments {
            match (seg, parts.next()) {
                (_, None) => return false,
                (Segment::Literal(l), Some(p)) if l != p => return false,
                _ => {}
            }
        }
        parts.next().is_none()
    }

    /// The same template with literals folded to lower case.
    pub fn to_folded(&self) -> Template {
        Template {
            text: self.text.to_ascii_lowercase(),
            segments: self
                .segments
                .iter()
                .map(|s| match s {
                    Segment::Literal(l) => Segment::Literal(l.to_ascii_lowercase()),
                    v => v.clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variable_matches_exactly_one_segment() {
        let t = Template::parse("/accounts/{id}/transfer").unwrap();
        assert!(t.matches("/accounts/42/transfer"));
        assert!(!t.matches("/accounts/transfer"));
        assert!(!t.matches("/accounts/4/2/transfer"));
        assert!(!t.matches("/accounts/42/transfer/x"));
        assert!(!t.matches("/accounts/42/transfers"));
        assert_eq!(t.segment_count(), 3);
        assert_eq!(t.literal_count(), 2);
    }

    #[test]
    fn templates_are_canonicalised() {
        let t = Template::parse("//accounts/{id}/./transfer/").unwrap();
        assert_eq!(t.as_str(), "/accounts/{id}/transfer");
        let t = Template::parse("/accounts/%7Bid%7D/transfer").unwrap();
        assert_eq!(t.as_str(), "/accounts/{id}/transfer");
    }

    #[test]
    fn malformed_templates_are_refused() {
        for bad in [
            "/files/{name}.json",
            "/a/{}",
            "/a/{x-y}",
            "/a/{x",
            "/a/x}",
            "/a/{x}/{x}",
            "/a/b",
            "a/{x}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_literal_prefix_is_the_path_before_the_first_variable() {
        assert_eq!(
            Template::literal_prefix("/accounts/{id}/transfer"),
            "/accounts"
        );
        assert_eq!(Template::literal_prefix("/{x}"), "/");
        assert_eq!(Template::literal_prefix("/a/b{x"), "/a");
    }
}
