//! What the dashboard and the alert rules ask of the sidecar's metrics, and what a scrape
//! offers: metric names and literal label matchers read out of PromQL, and the families,
//! types and series of a Prometheus text exposition.

use std::collections::{BTreeMap, BTreeSet};

/// Every `stepup_…` metric name in a PromQL expression.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    metric_occurrences(expr)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// Each `stepup_…` name in `expr` with the byte offset just past it.
fn metric_occurrences(expr: &str) -> Vec<(String, usize)> {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(found) = expr[i..].find("stepup_") {
        let start = i + found;
        let mut end = start;
        while end < bytes.len() && ident(bytes[end]) {
            end += 1;
        }
        // Part of a longer identifier (`x_stepup_…`) is no metric name of ours.
        if start == 0 || !ident(bytes[start - 1]) {
            out.push((expr[start..end].to_owned(), end));
        }
        i = end;
    }
    out
}

/// How a matcher compares a label (`=`, `!=`, `=~`, `!~`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Re => "=~",
            Op::NotRe => "!~",
        }
    }
}

/// One label matcher of a selector: `label op "value"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pub label: String,
    pub op: Op,
    pub value: String,
}

/// Each metric of `expr` written with a selector (`name{…}`), with its matchers.
pub fn selectors(expr: &str) -> Vec<(String, Vec<Matcher>)> {
    metric_occurrences(expr)
        .into_iter()
        .filter_map(|(name, end)| {
            let body = expr[end..].strip_prefix('{')?;
            Some((name, parse_matchers(body)))
        })
        .collect()
}

/// The matchers at the start of `body` (what follows a `{`), up to the closing `}`.
fn parse_matchers(body: &str) -> Vec<Matcher> {
    let mut out = Vec::new();
    let mut rest = body.trim_start();
    while !rest.starts_with('}') && !rest.is_empty() {
        let label_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let label = rest[..label_end].to_owned();
        rest = rest[label_end..].trim_start();
        let (op, len) = [
            ("=~", Op::Re),
            ("!~", Op::NotRe),
            ("!=", Op::Ne),
            ("=", Op::Eq),
        ]
        .into_iter()
        .find(|(s, _)| rest.starts_with(s))
        .map(|(s, op)| (op, s.len()))
        .unwrap_or_else(|| panic!("no matcher operator after {label:?} in {body:?}"));
        rest = rest[len..].trim_start();
        let quoted = rest
            .strip_prefix('"')
            .unwrap_or_else(|| panic!("unquoted value of {label:?} in {body:?}"));
        let close = quoted
            .find('"')
            .unwrap_or_else(|| panic!("unterminated value of {label:?} in {body:?}"));
        out.push(Matcher {
            label,
            op,
            value: quoted[..close].to_owned(),
        });
        rest = quoted[close + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    out
}

/// One sample line: the series' name and labels.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// A Prometheus text exposition (what `/metrics` answers).
#[derive(Debug, Default)]
pub struct Exposition {
    /// `# TYPE` of each family: counter, gauge, histogram, summary.
    pub types: BTreeMap<String, String>,
    pub series: Vec<Series>,
}

impl Exposition {
    pub fn parse(text: &str) -> Exposition {
        let mut e = Exposition::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(decl) = line.strip_prefix("# TYPE ") {
                let mut parts = decl.split_whitespace();
                if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                    e.types.insert(name.to_owned(), kind.to_owned());
                }
            } else if !line.starts_with('#') {
                e.series.push(parse_sample(line));
            }
        }
        e
    }

    /// The family a name used in PromQL reads, if the exposition has it: the name itself,
    /// or the histogram (or summary) whose `_bucket` (`_sum`, `_count`) series it is.
    pub fn family_of<'a>(&self, used: &'a str) -> Option<&'a str> {
        if self.types.contains_key(used) {
            return Some(used);
        }
        let kind_of = |base: &str| self.types.get(base).map(String::as_str);
        if let Some(base) = used.strip_suffix("_bucket") {
            return (kind_of(base) == Some("histogram")).then_some(base);
        }
        let base = used
            .strip_suffix("_sum")
            .or_else(|| used.strip_suffix("_count"))?;
        matches!(kind_of(base), Some("histogram" | "summary")).then_some(base)
    }

    /// Whether a series of `family` satisfies `m` (regular expressions: only `a|b|c`
    /// alternatives of literal values).
    pub fn has(&self, family: &str, m: &Matcher) -> bool {
        let alternatives: Vec<&str> = m.value.split('|').collect();
        self.series
            .iter()
            .filter(|s| s.name == family || s.name.starts_with(&format!("{family}_")))
            .filter_map(|s| s.labels.get(&m.label))
            .any(|v| match m.op {
                Op::Eq => *v == m.value,
                Op::Ne => *v != m.value,
                Op::Re => alternatives.contains(&v.as_str()),
                Op::NotRe => !alternatives.contains(&v.as_str()),
            })
    }
}

/// `name{a="x",b="y"} value` (label values with `\"`, `\\` and `\n` escapes).
fn parse_sample(line: &str) -> Series {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    if line[name_end..].starts_with('{') {
        let mut chars = line[name_end + 1..].chars().peekable();
        loop {
            let label: String = chars
                .by_ref()
                .take_while(|c| *c != '=')
                .collect::<String>()
                .trim_start_matches(',')
                .trim()
                .to_owned();
            if label.is_empty() || label.starts_with('}') {
                break;
            }
            assert_eq!(chars.next(), Some('"'), "label {label} of {line}");
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some(other) => value.push(other),
                        None => break,
                    },
                    c => value.push(c),
                }
            }
            labels.insert(label, value);
            if chars.peek() == Some(&'}') {
                break;
            }
        }
    }
    Series { name, labels }
}

#[test]
fn metric_names_and_matchers_are_read_out_of_promql() {
    let expr = r#"sum by (le) (rate(stepup_x_bucket{job=~"$job", outcome="error"}[5m])) / sum(stepup_y) > 0 and on() x_stepup_z"#;
    assert_eq!(
        metric_names(expr),
        BTreeSet::from(["stepup_x_bucket".to_owned(), "stepup_y".to_owned()])
    );
    let sel = selectors(expr);
    assert_eq!(sel.len(), 1);
    assert_eq!(sel[0].0, "stepup_x_bucket");
    assert_eq!(
        sel[0].1,
        [
            Matcher {
                label: "job".into(),
                op: Op::Re,
                value: "$job".into()
            },
            Matcher {
                label: "outcome".into(),
                op: Op::Eq,
                value: "error".into()
            }
        ]
    );
}

#[test]
fn an_exposition_names_its_families_and_histogram_parts() {
    let e = Exposition::parse(concat!(
        "# TYPE stepup_a_total counter\n",
        "stepup_a_total{outcome=\"deny\",rule=\"say \\\"hi\\\"\"} 3\n",
        "# TYPE stepup_h_seconds histogram\n",
        "stepup_h_seconds_bucket{le=\"0.1\"} 1\n",
        "# TYPE stepup_s_seconds summary\n",
        "stepup_s_seconds_sum 0.5\n",
    ));
    assert_eq!(e.family_of("stepup_a_total"), Some("stepup_a_total"));
    assert_eq!(
        e.family_of("stepup_h_seconds_bucket"),
        Some("stepup_h_seconds")
    );
    assert_eq!(
        e.family_of("stepup_s_seconds_count"),
        Some("stepup_s_seconds")
    );
    assert_eq!(
        e.family_of("stepup_s_seconds_bucket"),
        None,
        "a summary has no buckets"
    );
    let m = |op, value: &str| Matcher {
        label: "outcome".into(),
        op,
        value: value.into(),
    };
    assert!(e.has("stepup_a_total", &m(Op::Eq, "deny")));
    assert!(e.has("stepup_a_total", &m(Op::Re, "deny|error")));
    assert!(!e.has("stepup_a_total", &m(Op::Ne, "deny")));
    assert_eq!(e.series[0].labels["rule"], "say \"hi\"");
}
