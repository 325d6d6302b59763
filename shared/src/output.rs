//! Output: the `--format` choice, Teleport's text tables, and JSON/YAML printing.
//!
//! Tables reproduce Teleport's `asciitable` (Go `tabwriter`, padding 1): every cell, the last
//! included, is padded to its column width plus one space; the header is followed by a row of
//! dashes per column; the table ends with an empty line. This layout is simple and exact, and no
//! table crate reproduces it without hacks, so it is written here.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Human-readable text.
    #[default]
    Text,
    /// JSON (2-space indent).
    Json,
    /// YAML.
    Yaml,
}

impl FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Format> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "yaml" => Ok(Format::Yaml),
            _ => Err(Error::bad_parameter(format!("unsupported format {s:?}; use one of: text, json, yaml"))),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Yaml => "yaml",
        })
    }
}

/// Renders a table in Teleport's layout.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let cols = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = String>| {
        for (i, cell) in cells.enumerate().take(cols) {
            let pad = widths[i] - cell.chars().count() + 1;
            out.push_str(&cell);
            out.push_str(&" ".repeat(pad));
        }
        out.push('\n');
    };
    line(&mut headers.iter().map(|h| h.to_string()));
    line(&mut widths.iter().map(|w| "-".repeat(*w)));
    for row in rows {
        line(&mut (0..cols).map(|i| row.get(i).cloned().unwrap_or_default()));
    }
    out.push('\n');
    out
}

/// The command failed only because whoever read its output stopped (`tctl get rc | head`):
/// not worth an error message, as no other command-line tool prints one.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Pretty JSON with a trailing newline.
pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s
}

/// YAML of a serializable value (via JSON, so keys are sorted).
pub fn yaml<T: serde::Serialize + ?Sized>(value: &T) -> String {
    let v = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    crate::yaml::to_yaml(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_reader_is_told_from_other_errors() {
        let pipe = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe)).context("writing");
        assert!(is_broken_pipe(&pipe));
        assert!(!is_broken_pipe(&anyhow::anyhow!("remote cluster \"x\" is not found")));
    }

    #[test]
    fn matches_the_guides_tsh_clusters_table() {
        let t = table(
            &["Cluster Name", "Status", "Cluster Type", "Labels", "Selected"],
            &[
                vec!["rootcluster.example.com".into(), "online".into(), "root".into(), "".into(), "*".into()],
                vec!["leafcluster.example.com".into(), "online".into(), "leaf".into(), "".into(), "".into()],
            ],
        );
        let expected = "Cluster Name            Status Cluster Type Labels Selected \n\
                        ----------------------- ------ ------------ ------ -------- \n\
                        rootcluster.example.com online root                *        \n\
                        leafcluster.example.com online leaf                         \n\n";
        assert_eq!(t, expected);
    }

    #[test]
    fn unicode_width_counts_chars() {
        let t = table(&["Address"], &[vec!["⟵ Tunnel".into()]]);
        assert!(t.contains("⟵ Tunnel "));
        assert!(t.lines().nth(1).is_some_and(|l| l == "-------- "));
    }

    #[test]
    fn format_errors_list_values() {
        let e = "xml".parse::<Format>().err().map(|e| e.message).unwrap_or_default();
        assert_eq!(e, "unsupported format \"xml\"; use one of: text, json, yaml");
    }
}
