//! A store-neutral model of a DynamoDB item.
//!
//! Both store implementations persist [`Item`]s: the DynamoDB store converts them to and
//! from `AttributeValue` maps one to one, the in-memory store keeps them as they are. The
//! parsing of setting and session items is therefore written once, here in `core`, and the
//! two stores cannot disagree about what an item means.

use std::collections::BTreeMap;

/// One attribute value, mirroring the DynamoDB types that stepup reads or writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    /// `S`
    S(String),
    /// `N`, kept as its decimal text as DynamoDB does.
    N(String),
    /// `BOOL`
    Bool(bool),
    /// `SS`
    Ss(Vec<String>),
    /// `L`
    L(Vec<Attr>),
    /// `M`
    M(BTreeMap<String, Attr>),
    /// `NULL`
    Null,
    /// Any other type (`B`, `BS`, `NS`): kept so that a malformed item can be reported.
    Other(&'static str),
}

impl Attr {
    /// A number attribute from an integer.
    pub fn n(v: impl Into<u64>) -> Self {
        Attr::N(v.into().to_string())
    }

    /// A string attribute.
    pub fn s(v: impl Into<String>) -> Self {
        Attr::S(v.into())
    }

    /// The DynamoDB type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Attr::S(_) => "S",
            Attr::N(_) => "N",
            Attr::Bool(_) => "BOOL",
            Attr::Ss(_) => "SS",
            Attr::L(_) => "L",
            Attr::M(_) => "M",
            Attr::Null => "NULL",
            Attr::Other(t) => t,
        }
    }
}

/// An item: attribute name to value.
pub type Item = BTreeMap<String, Attr>;

/// Why an attribute could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttrError {
    /// A required attribute is absent.
    #[error("attribute `{0}` is missing")]
    Missing(&'static str),
    /// The attribute has another DynamoDB type than expected.
    #[error("attribute `{name}` has type {found}, expected {expected}")]
    WrongType {
        /// attribute name
        name: &'static str,
        /// the type found
        found: &'static str,
        /// the type expected
        expected: &'static str,
    },
    /// The attribute has the right type but a value outside its domain.
    #[error("attribute `{name}` has an invalid value: {detail}")]
    Invalid {
        /// attribute name
        name: &'static str,
        /// what is wrong (never contains a secret: items hold none)
        detail: String,
    },
}

/// The value of the number attribute `name` as a non-negative integer.
pub fn parse_u64(name: &'static str, n: &str) -> Result<u64, AttrError> {
    n.trim().parse::<u64>().map_err(|_| AttrError::Invalid {
        name,
        detail: format!("`{n}` is not a non-negative integer"),
    })
}

/// Typed accessors on an [`Item`]; `opt_*` return `Ok(None)` for an absent attribute or a
/// `NULL`, and an error for a present attribute of the wrong type.
pub trait ItemExt {
    /// A string attribute.
    fn opt_s(&self, name: &'static str) -> Result<Option<&str>, AttrError>;
    /// A non-negative integer attribute.
    fn opt_u64(&self, name: &'static str) -> Result<Option<u64>, AttrError>;
    /// A list of strings, given as `SS`, as `L` of `S`, or as one `S` (comma separated).
    fn opt_strings(&self, name: &'static str) -> Result<Option<Vec<String>>, AttrError>;
    /// A required string attribute.
    fn req_s(&self, name: &'static str) -> Result<&str, AttrError> {
        self.opt_s(name)?.ok_or(AttrError::Missing(name))
    }
}

impl ItemExt for Item {
    fn opt_s(&self, name: &'static str) -> Result<Option<&str>, AttrError> {
        match self.get(name) {
            None | Some(Attr::Null) => Ok(None),
            Some(Attr::S(s)) => Ok(Some(s)),
            Some(other) => Err(AttrError::WrongType {
                name,
                found: other.type_name(),
                expected: "S",
            }),
        }
    }

    fn opt_u64(&self, name: &'static str) -> Result<Option<u64>, AttrError> {
        match self.get(name) {
            None | Some(Attr::Null) => Ok(None),
            Some(Attr::N(n)) => parse_u64(name, n).map(Some),
            Some(other) => Err(AttrError::WrongType {
                name,
                found: other.type_name(),
                expected: "N",
            }),
        }
    }

    fn opt_strings(&self, name: &'static str) -> Result<Option<Vec<String>>, AttrError> {
        match self.get(name) {
            None | Some(Attr::Null) => Ok(None),
            Some(Attr::Ss(v)) => Ok(Some(v.clone())),
            Some(Attr::S(s)) => Ok(Some(
                s.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )),
            Some(Attr::L(list)) => list
                .iter()
                .map(|a| match a {
                    Attr::S(s) => Ok(s.clone()),
                    other => Err(AttrError::WrongType {
                        name,
                        found: other.type_name(),
                        expected: "S (in a list)",
                    }),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(AttrError::WrongType {
                name,
                found: other.type_name(),
                expected: "SS or L",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, Attr)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn strings_accept_string_sets_lists_and_comma_separated_text() {
        let it = item(&[
            ("a", Attr::Ss(vec!["GET".into(), "POST".into()])),
            ("b", Attr::L(vec![Attr::s("GET"), Attr::s("POST")])),
            ("c", Attr::s("GET, POST")),
        ]);
        for k in ["a", "b", "c"] {
            let name: &'static str = match k {
                "a" => "a",
                "b" => "b",
                _ => "c",
            };
            assert_eq!(
                it.opt_strings(name).unwrap(),
                Some(vec!["GET".into(), "POST".into()])
            );
        }
    }

    #[test]
    fn a_number_in_a_string_attribute_is_a_type_error() {
        let it = item(&[("maxAgeSeconds", Attr::s("300"))]);
        assert!(matches!(
            it.opt_u64("maxAgeSeconds"),
            Err(AttrError::WrongType { found: "S", .. })
        ));
        let it = item(&[("maxAgeSeconds", Attr::N("-4".into()))]);
        assert!(matches!(
            it.opt_u64("maxAgeSeconds"),
            Err(AttrError::Invalid { .. })
        ));
        assert_eq!(item(&[]).opt_u64("maxAgeSeconds").unwrap(), None);
    }
}
