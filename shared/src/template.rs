//! Role templates: `{{internal.logins}}`, `{{external.groups}}`, `email.local(...)` and
//! `regexp.replace(...)` (reference §4.3).
//!
//! A role value is either a literal or `prefix{{expression}}suffix`. Expressions read the
//! caller's *traits* (a map of name to values). The namespace (`internal`/`external`) is checked
//! but not used for lookup: both read `traits[name]`. A template whose trait has no values
//! expands to nothing, and the caller silently drops that entry, exactly like Teleport.

use std::collections::BTreeMap;

use regex::Regex;

use crate::error::{Error, Kind, Result};

/// User traits: trait name to values (`logins`, `kubernetes_groups`, SSO claims, ...).
pub type Traits = BTreeMap<String, Vec<String>>;

/// Trait names allowed in the `internal` namespace.
pub const INTERNAL_TRAITS: &[&str] = &[
    "logins",
    "windows_logins",
    "kubernetes_groups",
    "kubernetes_users",
    "db_names",
    "db_users",
    "db_roles",
    "aws_role_arns",
    "azure_identities",
    "gcp_service_accounts",
    "host_user_uid",
    "host_user_gid",
    "jwt",
];

/// A parsed expression inside `{{ }}`.
#[derive(Debug, Clone)]
pub enum Expr {
    /// `namespace.name` or `namespace["name"]`.
    Var {
        /// `internal` or `external`.
        namespace: String,
        /// The trait name.
        name: String,
    },
    /// `email.local(expr)`: the part of each value before `@`.
    EmailLocal(Box<Expr>),
    /// `regexp.replace(expr, "re", "replacement")`: values that match are rewritten; others dropped.
    RegexpReplace(Box<Expr>, Regex, String),
}

/// A parsed role value.
#[derive(Debug, Clone)]
pub struct Template {
    prefix: String,
    expr: Option<Expr>,
    suffix: String,
}

fn parse_error(s: &str) -> Error {
    Error::bad_parameter(format!(
        "{s:?} is using template brackets '{{{{' or '}}}}', however expression does not parse, make sure the format is {{{{variable}}}}"
    ))
}

impl Template {
    /// Parses a role value. Literals (no braces) always parse.
    pub fn parse(s: &str) -> Result<Template> {
        let opens = s.matches("{{").count();
        let closes = s.matches("}}").count();
        if opens == 0 && closes == 0 {
            return Ok(Template { prefix: s.to_string(), expr: None, suffix: String::new() });
        }
        if opens != 1 || closes != 1 {
            return Err(parse_error(s));
        }
        let (Some(start), Some(end)) = (s.find("{{"), s.find("}}")) else {
            return Err(parse_error(s));
        };
        if end < start {
            return Err(parse_error(s));
        }
        let inner = s[start + 2..end].trim();
        let mut p = Parser { src: inner, pos: 0 };
        let expr = p.expr().map_err(|e| if e.kind == Kind::BadParameter && e.message.is_empty() { parse_error(s) } else { e })?;
        p.skip_ws();
        if p.pos != inner.len() {
            return Err(parse_error(s));
        }
        Ok(Template { prefix: s[..start].to_string(), expr: Some(expr), suffix: s[end + 2..].to_string() })
    }

    /// True when the value has no `{{ }}` expression.
    pub fn is_literal(&self) -> bool {
        self.expr.is_none()
    }

    /// Expands the template. `NotFound` when the trait has no values (the caller drops the entry).
    pub fn apply(&self, traits: &Traits) -> Result<Vec<String>> {
        let Some(expr) = &self.expr else {
            return Ok(vec![self.prefix.clone()]);
        };
        let values = eval(expr, traits)?;
        let out: Vec<String> =
            values.into_iter().filter(|v| !v.is_empty()).map(|v| format!("{}{}{}", self.prefix, v, self.suffix)).collect();
        if out.is_empty() {
            return Err(Error::not_found("template expanded to no values"));
        }
        Ok(out)
    }
}

fn eval(expr: &Expr, traits: &Traits) -> Result<Vec<String>> {
    match expr {
        Expr::Var { namespace, name } => {
            if namespace == "internal" && !INTERNAL_TRAITS.contains(&name.as_str()) {
                return Err(Error::bad_parameter(format!("unsupported variable {name:?}")));
            }
            match traits.get(name) {
                Some(v) if !v.is_empty() => Ok(v.clone()),
                _ => Err(Error::not_found(format!("variable {namespace}.{name} has no values"))),
            }
        }
        Expr::EmailLocal(inner) => {
            let values = eval(inner, traits)?;
            values
                .into_iter()
                .map(|v| match v.split_once('@') {
                    Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(local.to_string()),
                    _ => Err(Error::bad_parameter(format!("failed to parse address {v:?}: not an email address"))),
                })
                .collect()
        }
        Expr::RegexpReplace(inner, re, repl) => {
            let values = eval(inner, traits)?;
            Ok(values.into_iter().filter(|v| re.is_match(v)).map(|v| re.replace_all(&v, repl.as_str()).into_owned()).collect())
        }
    }
}

/// Expands a list of role values: each value's expansions, in order, de-duplicated; entries whose
/// trait is missing or whose variable is unsupported are dropped (reference §4.3).
pub fn apply_values(values: &[String], traits: &Traits) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        let Ok(t) = Template::parse(v) else { continue };
        let Ok(expanded) = t.apply(traits) else {
            continue;
        };
        for e in expanded {
            if !out.contains(&e) {
                out.push(e);
            }
        }
    }
    out
}

/// Checks that every value parses and that `internal` variables are supported (used when a role
/// is created, so mistakes surface at `tctl create`, not at login time).
pub fn validate_values(field: &str, values: &[String]) -> Result<()> {
    for v in values {
        let t = Template::parse(v).map_err(|e| e.context(field))?;
        if let Some(expr) = &t.expr {
            check_vars(expr).map_err(|e| e.context(field))?;
        }
    }
    Ok(())
}

fn check_vars(expr: &Expr) -> Result<()> {
    match expr {
        Expr::Var { namespace, name } => {
            if namespace == "internal" && !INTERNAL_TRAITS.contains(&name.as_str()) {
                return Err(Error::bad_parameter(format!("unsupported variable {name:?}")));
            }
            Ok(())
        }
        Expr::EmailLocal(inner) | Expr::RegexpReplace(inner, _, _) => check_vars(inner),
    }
}

/// A tiny recursive-descent parser for the expression language.
struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

enum Arg {
    Expr(Expr),
    Str(String),
}

impl Parser<'_> {
    fn fail<T>(&self) -> Result<T> {
        Err(Error::bad_parameter(""))
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Result<String> {
        self.skip_ws();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                self.pos += 1;
            } else {
                break;
            }
        }
        if self.pos == start {
            return self.fail();
        }
        Ok(self.src[start..self.pos].to_string())
    }

    fn string(&mut self) -> Result<String> {
        self.skip_ws();
        if self.peek() != Some('"') {
            return self.fail();
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return self.fail();
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(n) = self.peek() else {
                        return self.fail();
                    };
                    self.pos += n.len_utf8();
                    match n {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
    }

    fn arg(&mut self) -> Result<Arg> {
        self.skip_ws();
        if self.peek() == Some('"') {
            return Ok(Arg::Str(self.string()?));
        }
        Ok(Arg::Expr(self.expr()?))
    }

    fn expr(&mut self) -> Result<Expr> {
        let mut path = vec![self.ident()?];
        loop {
            if self.eat('.') {
                path.push(self.ident()?);
            } else if self.eat('[') {
                path.push(self.string()?);
                if !self.eat(']') {
                    return self.fail();
                }
            } else {
                break;
            }
        }
        if self.eat('(') {
            let mut args = Vec::new();
            if !self.eat(')') {
                loop {
                    args.push(self.arg()?);
                    if self.eat(')') {
                        break;
                    }
                    if !self.eat(',') {
                        return self.fail();
                    }
                }
            }
            let name = path.join(".");
            return match (name.as_str(), args.as_mut_slice()) {
                ("email.local", [Arg::Expr(_)]) => match args.pop() {
                    Some(Arg::Expr(e)) => Ok(Expr::EmailLocal(Box::new(e))),
                    _ => self.fail(),
                },
                ("regexp.replace", [Arg::Expr(_), Arg::Str(_), Arg::Str(_)]) => {
                    let (Some(Arg::Str(repl)), Some(Arg::Str(re)), Some(Arg::Expr(e))) = (args.pop(), args.pop(), args.pop()) else {
                        return self.fail();
                    };
                    let re = Regex::new(&re).map_err(|err| Error::bad_parameter(format!("failed parsing regexp {re:?}: {err}")))?;
                    Ok(Expr::RegexpReplace(Box::new(e), re, repl))
                }
                ("regexp.match", _) | ("regexp.not_match", _) => {
                    Err(Error::bad_parameter(format!("function {name} is not allowed in role values; it is only valid in where clauses")))
                }
                _ => Err(Error::bad_parameter(format!("unsupported function {name:?}; use email.local or regexp.replace"))),
            };
        }
        if path.len() != 2 {
            return self.fail();
        }
        let name = path.pop().unwrap_or_default();
        let namespace = path.pop().unwrap_or_default();
        if namespace != "internal" && namespace != "external" {
            return Err(Error::bad_parameter(format!("unsupported variable namespace {namespace:?}; use internal or external")));
        }
        Ok(Expr::Var { namespace, name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traits(pairs: &[(&str, &[&str])]) -> Traits {
        pairs.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect()
    }

    fn expand(s: &str, t: &Traits) -> Result<Vec<String>> {
        Template::parse(s)?.apply(t)
    }

    #[test]
    fn literal_passes_through() {
        assert_eq!(expand("root", &Traits::new()).ok(), Some(vec!["root".to_string()]));
    }

    #[test]
    fn internal_and_external_read_the_same_trait() {
        let t = traits(&[("logins", &["root", "ubuntu"])]);
        assert_eq!(expand("{{internal.logins}}", &t).ok(), Some(vec!["root".into(), "ubuntu".into()]));
        assert_eq!(expand("{{ external.logins }}", &t).ok(), Some(vec!["root".into(), "ubuntu".into()]));
        assert_eq!(expand("{{external[\"logins\"]}}", &t).ok(), Some(vec!["root".into(), "ubuntu".into()]));
    }

    #[test]
    fn prefix_and_suffix_wrap_each_value() {
        let t = traits(&[("env_from_okta", &["dev", "stage"])]);
        assert_eq!(expand("x-{{external.env_from_okta}}-y", &t).ok(), Some(vec!["x-dev-y".into(), "x-stage-y".into()]));
    }

    #[test]
    fn missing_trait_is_not_found() {
        let e = expand("{{external.nope}}", &Traits::new()).err().map(|e| e.kind);
        assert_eq!(e, Some(Kind::NotFound));
        let t = traits(&[("empty", &[])]);
        assert_eq!(expand("{{external.empty}}", &t).err().map(|e| e.kind), Some(Kind::NotFound));
    }

    #[test]
    fn unsupported_internal_variable() {
        let e = expand("{{internal.foo}}", &traits(&[("foo", &["x"])])).err().map(|e| e.message);
        assert_eq!(e.as_deref(), Some("unsupported variable \"foo\""));
        assert!(validate_values("logins", &["{{internal.foo}}".into()]).is_err());
        assert!(validate_values("logins", &["{{external.foo}}".into()]).is_ok());
    }

    #[test]
    fn email_local_and_regexp_replace() {
        let t = traits(&[("email", &["alice@example.com"]), ("groups", &["admins", "dev-team", "ops"])]);
        assert_eq!(expand("{{email.local(external.email)}}", &t).ok(), Some(vec!["alice".into()]));
        assert_eq!(expand("{{regexp.replace(external.groups, \"^(.*)-team$\", \"$1\")}}", &t).ok(), Some(vec!["dev".into()]));
        assert!(expand("{{email.local(external.groups)}}", &t).is_err());
    }

    #[test]
    fn broken_brackets_are_rejected_with_teleports_message() {
        for bad in ["{{internal.logins", "internal.logins}}", "{{internal.logins}}{{x.y}}", "{{}}", "{{internal}}", "{{a.b.c}}", "}}x{{"] {
            let e = Template::parse(bad).err().map(|e| e.message).unwrap_or_default();
            assert!(e.contains("is using template brackets") || e.contains("namespace"), "{bad}: {e}");
        }
        let e = Template::parse("{{regexp.match(external.x)}}").err().map(|e| e.message).unwrap_or_default();
        assert!(e.contains("not allowed"), "{e}");
        let e = Template::parse("{{regexp.replace(external.x, \"(\", \"y\")}}").err().map(|e| e.message).unwrap_or_default();
        assert!(e.contains("failed parsing regexp"), "{e}");
    }

    #[test]
    fn apply_values_drops_missing_and_dedupes() {
        let t = traits(&[("logins", &["root", "visitor"])]);
        let vals = vec!["{{internal.logins}}".to_string(), "root".into(), "{{external.missing}}".into(), "{{internal.nope}}".into()];
        assert_eq!(apply_values(&vals, &t), vec!["root".to_string(), "visitor".into()]);
    }
}
