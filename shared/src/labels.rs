//! Label selectors: `node_labels`, `cluster_labels` and friends (reference §6 step 7).
//!
//! A selector maps a label key to allowed values. A value is `*` (anything), a glob (`prod-*`)
//! or a regular expression when it starts with `^` and ends with `$`. An empty selector matches
//! nothing; `'*': '*'` matches everything, including a target with no labels.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::resource::LabelMap;

/// Allowed values of one selector key. YAML accepts a scalar or a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelValues(pub Vec<String>);

impl Serialize for LabelValues {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if self.0.len() == 1 { s.serialize_str(&self.0[0]) } else { self.0.serialize(s) }
    }
}

impl<'de> Deserialize<'de> for LabelValues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        match OneOrMany::deserialize(d) {
            Ok(OneOrMany::One(s)) => Ok(LabelValues(vec![s])),
            Ok(OneOrMany::Many(v)) => Ok(LabelValues(v)),
            Err(_) => Err(serde::de::Error::custom("a label value must be a string or a list of strings")),
        }
    }
}

/// A label selector.
pub type Labels = BTreeMap<String, LabelValues>;

/// `{'*': '*'}`: matches every target.
pub fn wildcard() -> Labels {
    let mut l = Labels::new();
    l.insert("*".into(), LabelValues(vec!["*".into()]));
    l
}

/// Compiles a role-map or label expression: `^…$` is a regular expression; anything else is a
/// literal in which each `*` matches any run of characters and is a numbered capture group.
pub fn compile_expression(expr: &str) -> std::result::Result<Regex, regex::Error> {
    if expr.starts_with('^') && expr.ends_with('$') {
        return Regex::new(expr);
    }
    let quoted = regex::escape(expr).replace("\\*", "(.*)");
    Regex::new(&format!("^{quoted}$"))
}

/// Whether `value` matches one selector value.
pub fn value_matches(pattern: &str, value: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match compile_expression(pattern) {
        Ok(re) => re.is_match(value),
        Err(_) => false,
    }
}

/// Whether `target` satisfies `selector` (Teleport's `MatchLabels`).
pub fn match_labels(selector: &Labels, target: &LabelMap) -> bool {
    if selector.is_empty() {
        return false;
    }
    if let Some(v) = selector.get("*")
        && v.0.iter().any(|x| x == "*")
    {
        return true;
    }
    selector.iter().all(|(key, values)| {
        let Some(actual) = target.get(key) else {
            return false;
        };
        values.0.iter().any(|p| value_matches(p, actual))
    })
}

/// Validates a selector at role creation: `*` keys only with `*` values, regexes compile.
pub fn validate(field: &str, labels: &Labels) -> Result<()> {
    for (key, values) in labels {
        if key == "*" {
            for v in &values.0 {
                if v != "*" {
                    return Err(Error::bad_parameter(format!("{field}: selector *:{v} is not supported")));
                }
            }
        }
        for v in &values.0 {
            if v.contains("{{") || v.contains("}}") {
                crate::template::validate_values(field, std::slice::from_ref(v))?;
                continue;
            }
            compile_expression(v).map_err(|e| Error::bad_parameter(format!("{field}: invalid label value {v:?} for key {key:?}: {e}")))?;
        }
    }
    Ok(())
}

/// Applies traits to a selector: a key or value uses the *first* expansion; one that cannot be
/// expanded becomes `""` (which matches nothing); values are de-duplicated (reference §4.3).
pub fn apply_traits(labels: &Labels, traits: &crate::template::Traits) -> Labels {
    let first = |s: &str| -> String {
        match crate::template::Template::parse(s).and_then(|t| t.apply(traits)) {
            Ok(v) => v.into_iter().next().unwrap_or_default(),
            Err(_) => String::new(),
        }
    };
    let mut out = Labels::new();
    for (k, values) in labels {
        let key = first(k);
        let mut vals: Vec<String> = Vec::new();
        for v in &values.0 {
            let expanded = match crate::template::Template::parse(v).and_then(|t| t.apply(traits)) {
                Ok(list) => list,
                Err(_) => vec![String::new()],
            };
            for e in expanded {
                if !vals.contains(&e) {
                    vals.push(e);
                }
            }
        }
        out.entry(key).or_default().0.extend(vals);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(pairs: &[(&str, &[&str])]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), LabelValues(v.iter().map(|s| s.to_string()).collect()))).collect()
    }
    fn target(pairs: &[(&str, &str)]) -> LabelMap {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn empty_selector_matches_nothing() {
        assert!(!match_labels(&Labels::new(), &target(&[])));
        assert!(!match_labels(&Labels::new(), &target(&[("env", "demo")])));
    }

    #[test]
    fn wildcard_matches_everything_even_no_labels() {
        assert!(match_labels(&wildcard(), &target(&[])));
        assert!(match_labels(&wildcard(), &target(&[("env", "prod")])));
    }

    #[test]
    fn keys_must_exist_and_values_match() {
        let s = sel(&[("env", &["demo"])]);
        assert!(match_labels(&s, &target(&[("env", "demo")])));
        assert!(!match_labels(&s, &target(&[("env", "prod")])));
        assert!(!match_labels(&s, &target(&[])));
        let s = sel(&[("env", &["prod-*"]), ("team", &["^(a|b)$"])]);
        assert!(match_labels(&s, &target(&[("env", "prod-eu"), ("team", "b")])));
        assert!(!match_labels(&s, &target(&[("env", "prod-eu"), ("team", "c")])));
        let s = sel(&[("env", &["*"])]);
        assert!(match_labels(&s, &target(&[("env", "anything")])));
        assert!(!match_labels(&s, &target(&[("other", "x")])));
    }

    #[test]
    fn glob_metacharacters_are_literal() {
        assert!(value_matches("a.b", "a.b"));
        assert!(!value_matches("a.b", "axb"));
        assert!(!value_matches("^dev", "dev"));
        assert!(value_matches("^dev", "^dev"));
    }

    #[test]
    fn validation_rules() {
        assert!(validate("node_labels", &sel(&[("*", &["prod"])])).is_err());
        let e = validate("node_labels", &sel(&[("*", &["prod"])])).err().map(|e| e.message).unwrap_or_default();
        assert!(e.contains("selector *:prod is not supported"), "{e}");
        assert!(validate("node_labels", &sel(&[("env", &["^(unclosed$"])])).is_err());
        assert!(validate("node_labels", &sel(&[("env", &["{{external.env}}"])])).is_ok());
        assert!(validate("node_labels", &wildcard()).is_ok());
    }

    #[test]
    fn traits_apply_to_label_values() {
        let mut t = crate::template::Traits::new();
        t.insert("env_from_okta".into(), vec!["stage".into(), "dev".into()]);
        let out = apply_traits(&sel(&[("env", &["{{external.env_from_okta}}"])]), &t);
        assert_eq!(out.get("env").map(|v| v.0.clone()), Some(vec!["stage".to_string(), "dev".into()]));
        let out = apply_traits(&sel(&[("env", &["{{external.missing}}"])]), &t);
        assert_eq!(out.get("env").map(|v| v.0.clone()), Some(vec![String::new()]));
        assert!(!match_labels(&out, &target(&[("env", "stage")])));
    }
}
