//! Resource YAML as `tctl create` reads it: split into documents, typed by kind, validated.
//! A resource that validates must survive a print-and-read round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::resource::Resource;

fuzz_target!(|data: &[u8]| {
    let Ok(docs) = shared::yaml::parse_documents("fuzz.yaml", data) else { return };
    for doc in docs {
        let Ok(mut res) = Resource::from_value(doc.value) else { continue };
        if res.check_creatable().is_err() {
            continue;
        }
        let printed = shared::yaml::to_yaml(&res.to_value());
        let again = shared::yaml::parse_documents("printed.yaml", printed.as_bytes()).expect("printed YAML parses");
        assert_eq!(again.len(), 1, "{printed}");
        let mut back = Resource::from_value(again[0].value.clone()).unwrap_or_else(|e| panic!("{e}\n{printed}"));
        back.check_creatable().unwrap_or_else(|e| panic!("{e}\n{printed}"));
        assert_eq!(back.to_value(), res.to_value(), "round trip changed the resource:\n{printed}");
    }
});
