//! Label selectors: validation, matching and trait expansion. Input (UTF-8 text): line 1 is a
//! selector `key=v1|v2;key2=v3`, line 2 the target's labels `key=value;...`, the rest traits
//! `name=v1,v2`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::labels::{LabelValues, Labels, apply_traits, match_labels, validate, value_matches};
use shared::resource::LabelMap;
use shared::template::Traits;

fn pairs(line: &str) -> impl Iterator<Item = (&str, &str)> {
    line.split(';').take(16).filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, "")))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.lines();
    let mut selector = Labels::new();
    for (k, v) in pairs(lines.next().unwrap_or_default()) {
        selector.insert(k.to_string(), LabelValues(v.split('|').map(String::from).collect()));
    }
    let target: LabelMap = pairs(lines.next().unwrap_or_default()).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut traits = Traits::new();
    for line in lines.take(8) {
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        traits.entry(k.to_string()).or_default().extend(v.split(',').map(String::from));
    }
    let valid = validate("node_labels", &selector).is_ok();
    let matched = match_labels(&selector, &target);
    assert_eq!(matched, match_labels(&selector, &target), "deterministic");
    if selector.is_empty() {
        assert!(!matched, "an empty selector matches nothing");
    }
    if matched && valid && !selector.contains_key("*") {
        // Without the `'*': '*'` wildcard, every key of a matching selector is on the target
        // with an allowed value.
        for (k, values) in &selector {
            let actual = target.get(k).expect("matched key present");
            assert!(values.0.iter().any(|p| value_matches(p, actual)));
        }
    }
    let expanded = apply_traits(&selector, &traits);
    let _ = match_labels(&expanded, &target);
});
