//! Reading resource files and printing resources the way `tctl` does.
//!
//! Input: a YAML stream of one or more documents separated by `---`. Errors name the file, the
//! line and column (for syntax errors) or the document and field (for schema errors).
//! Output: keys sorted alphabetically, lists not indented under their key, documents separated
//! by `---` (Teleport prints YAML by converting its JSON, reference §2).

use crate::error::{Error, Result};

/// Largest resource file we read (a guard against accidental or hostile huge input).
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// One parsed document.
#[derive(Debug, Clone)]
pub struct Document {
    /// 1-based position in the stream.
    pub index: usize,
    /// 1-based line where the document starts.
    pub line: usize,
    /// The document as JSON.
    pub value: serde_json::Value,
}

/// Splits a YAML stream into documents and parses each. Empty documents are skipped.
pub fn parse_documents(source: &str, bytes: &[u8]) -> Result<Vec<Document>> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Error::bad_parameter(format!(
            "{source}: the file is {} bytes; resource files are limited to {} bytes",
            bytes.len(),
            MAX_FILE_BYTES
        )));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::bad_parameter(format!("{source}: the file is not valid UTF-8 (first bad byte at offset {})", e.valid_up_to()))
    })?;
    let mut chunks: Vec<(usize, String)> = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            chunks.push((start, std::mem::take(&mut current)));
            start = i + 2;
            let rest = trimmed.strip_prefix("---").unwrap_or_default().trim();
            if !rest.is_empty() {
                current.push_str(rest);
                current.push('\n');
                start = i + 1;
            }
            continue;
        }
        if trimmed == "..." {
            continue;
        }
        current.push_str(line);
    }
    chunks.push((start, current));

    let mut docs = Vec::new();
    for (start_line, chunk) in chunks {
        let meaningful = chunk.lines().any(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        });
        if !meaningful {
            continue;
        }
        let index = docs.len() + 1;
        let located = |e: serde_yaml_ng::Error| {
            let msg = strip_location(&e.to_string());
            match e.location() {
                Some(loc) => Error::bad_parameter(format!("{source}:{}:{}: {msg}", loc.line() + start_line - 1, loc.column())),
                None => Error::bad_parameter(format!("{source}: document {index} (line {start_line}): {msg}")),
            }
        };
        // YAML's own value type refuses duplicate keys, which a JSON map would silently
        // collapse to the last one (`name: a` then `name: b` would create `b`).
        let yaml = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&chunk).map_err(located)?;
        if has_tag(&yaml) {
            return Err(Error::bad_parameter(format!(
                "{source}: document {index} (line {start_line}): YAML tags such as !tag are not supported"
            )));
        }
        let value: serde_json::Value = serde_yaml_ng::from_str(&chunk).map_err(located)?;
        if !value.is_object() {
            return Err(Error::bad_parameter(format!(
                "{source}:{start_line}: document {index} is not a mapping; a resource needs kind, version, metadata and spec"
            )));
        }
        docs.push(Document { index, line: start_line, value });
    }
    if docs.is_empty() {
        return Err(Error::bad_parameter(format!("{source}: no resources found in the file")));
    }
    Ok(docs)
}

/// Whether a tag (`!tag`) appears anywhere in `v`: JSON has no place for one.
fn has_tag(v: &serde_yaml_ng::Value) -> bool {
    match v {
        serde_yaml_ng::Value::Tagged(_) => true,
        serde_yaml_ng::Value::Sequence(s) => s.iter().any(has_tag),
        serde_yaml_ng::Value::Mapping(m) => m.iter().any(|(k, v)| has_tag(k) || has_tag(v)),
        _ => false,
    }
}

fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Prints one value as YAML (keys sorted).
pub fn to_yaml(value: &serde_json::Value) -> String {
    serde_yaml_ng::to_string(value).unwrap_or_default()
}

/// Prints several values as a YAML stream separated by `---`.
pub fn to_yaml_stream(values: &[serde_json::Value]) -> String {
    // One emitter for the whole stream (it writes the `---` between documents itself): one per
    // document was a third of printing 10,000 of them.
    let mut out = Vec::new();
    let mut ser = serde_yaml_ng::Serializer::new(&mut out);
    for v in values {
        if serde::Serialize::serialize(v, &mut ser).is_err() {
            return values.iter().map(to_yaml).collect::<Vec<_>>().join("---\n");
        }
    }
    drop(ser);
    String::from_utf8(out).unwrap_or_default()
}

/// Lists shorter than this print on one thread; spawning costs more than it saves.
const PARALLEL_FROM: usize = 512;

/// Prints a JSON array (a response body) as a YAML stream, byte for byte what
/// [`to_yaml_stream`] prints for its parsed values. Long lists are parsed and printed in
/// slices on every core: at 10,000 leaves, parsing and libyaml's emitter were most of `tctl get
/// rc`. The body is first split into raw elements without building any values.
pub fn json_array_to_yaml_stream(body: &[u8]) -> Result<String> {
    json_array_to_yaml_stream_from(body, PARALLEL_FROM)
}

fn json_array_to_yaml_stream_from(body: &[u8], parallel_from: usize) -> Result<String> {
    let bad = |e: serde_json::Error| Error::internal(format!("decoding the response: {e}"));
    let raw: Vec<&serde_json::value::RawValue> = serde_json::from_slice(body).map_err(bad)?;
    let print = |part: &[&serde_json::value::RawValue]| -> Result<String> {
        let values = part.iter().map(|r| serde_json::from_str(r.get())).collect::<std::result::Result<Vec<serde_json::Value>, _>>();
        Ok(to_yaml_stream(&values.map_err(bad)?))
    };
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if raw.len() < parallel_from || threads < 2 {
        return print(&raw);
    }
    let parts: Vec<Result<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = raw.chunks(raw.len().div_ceil(threads)).map(|part| scope.spawn(move || print(part))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(Error::internal("printing YAML failed")))).collect()
    });
    // Each slice is a stream of its own; the separator between slices is the one the emitter
    // writes between documents.
    Ok(parts.into_iter().collect::<Result<Vec<_>>>()?.join("---\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_with_lines() {
        let src = b"# comment\nkind: role\nmetadata: {name: a}\n---\nkind: user\nmetadata: {name: b}\n---\n";
        let docs = parse_documents("f.yaml", src).map_err(|e| e.message);
        let docs = docs.unwrap_or_default();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].line, 5);
        assert_eq!(docs[1].value["kind"], "user");
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_line() {
        let src = b"kind: role\n---\nkind: role\nmetadata:\n  name: a\n  name: b\n";
        let e = parse_documents("dup.yaml", src).err().map(|e| e.message).unwrap_or_default();
        assert_eq!(e, "dup.yaml:5:3: metadata: duplicate entry with key \"name\"");
    }

    #[test]
    fn syntax_error_names_file_line_and_column() {
        let src = b"kind: role\n---\nkind: user\nmetadata:\n  name: [unclosed\n";
        let e = parse_documents("bad.yaml", src).err().map(|e| e.message).unwrap_or_default();
        assert!(e.starts_with("bad.yaml:"), "{e}");
        let line: usize = e.split(':').nth(1).and_then(|l| l.parse().ok()).unwrap_or(0);
        assert!((5..=6).contains(&line), "{e}");
    }

    #[test]
    fn rejects_non_mapping_empty_and_binary() {
        assert!(parse_documents("f", b"- a\n- b\n").err().map(|e| e.message).unwrap_or_default().contains("not a mapping"));
        assert!(parse_documents("f", b"# nothing\n").err().map(|e| e.message).unwrap_or_default().contains("no resources"));
        assert!(parse_documents("f", b"kind: \xff\xfe\n").err().map(|e| e.message).unwrap_or_default().contains("UTF-8"));
        let huge = vec![b'a'; MAX_FILE_BYTES + 1];
        assert!(parse_documents("f", &huge).err().map(|e| e.message).unwrap_or_default().contains("limited"));
    }

    #[test]
    fn a_json_body_prints_as_the_stream_of_its_values_in_slices_or_not() {
        let docs: Vec<serde_json::Value> = (0..41)
            .map(|i| serde_json::json!({"kind": "remote_cluster", "metadata": {"name": format!("leaf-{i}"), "id": i}, "status": {"connection": "online", "n": "1"}}))
            .collect();
        let body = serde_json::to_vec(&docs).unwrap_or_default();
        let whole = to_yaml_stream(&docs);
        assert_eq!(json_array_to_yaml_stream_from(&body, 1).ok().as_deref(), Some(whole.as_str()));
        assert_eq!(json_array_to_yaml_stream_from(&body, 1000).ok().as_deref(), Some(whole.as_str()));
        assert_eq!(json_array_to_yaml_stream(b"[]").ok().as_deref(), Some(""));
        assert!(json_array_to_yaml_stream(b"{\"not\": \"a list\"}").is_err());
    }

    #[test]
    fn a_stream_is_its_documents_joined_by_separators() {
        let docs =
            [serde_json::json!({"kind": "a", "spec": {"x": "1"}}), serde_json::json!({"kind": "b"}), serde_json::json!({"kind": "c"})];
        assert_eq!(to_yaml_stream(&docs), docs.iter().map(to_yaml).collect::<Vec<_>>().join("---\n"));
        assert_eq!(to_yaml_stream(&[]), "");
    }

    #[test]
    fn yaml_keys_sorted_lists_unindented() {
        let v = serde_json::json!({"version": "v2", "kind": "x", "spec": {"list": ["a"]}});
        assert_eq!(to_yaml(&v), "kind: x\nspec:\n  list:\n  - a\nversion: v2\n");
    }
}
