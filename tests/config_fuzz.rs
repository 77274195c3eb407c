//! Mutated and random YAML never panics the config loader: every input ends in a config
//! or in located errors.

use std::path::Path;

use proptest::prelude::*;

use crate::support;

/// The corpus the mutations start from.
fn seeds() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut seeds = vec![std::fs::read_to_string(root.join("gateway.yaml")).unwrap()];
    for kind in ["valid", "invalid"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join("tests/config").join(kind))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        seeds.extend(paths.iter().map(|p| std::fs::read_to_string(p).unwrap()));
    }
    seeds
}

/// Fragments that tend to break YAML or typed fields.
const TOKENS: &[&str] = &[
    ":",
    "- ",
    "{}",
    "[]",
    "*",
    "-1",
    "1e309",
    "null",
    "~",
    "&a ",
    "*a",
    "<<: *a",
    "!!binary ",
    "\t",
    "    ",
    "\n",
    "'",
    "\"",
    "0x10",
    "99999999999999999999",
    "route:",
    "weight: -1",
    "match:",
    "- destination: {host: x}",
    "? ",
    "|\n",
    "---\n",
    "...\n",
    "spec: 3",
    "\u{fffd}",
    "prefix: ",
    "regex: '('",
    "number: 0",
    "fixedDelay: 1h",
    "percentage: {value: NaN}",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, token: usize },
    DuplicateLine { line: usize },
    SwapLines { a: usize, b: usize },
    Indent { line: usize, spaces: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        (any::<usize>(), 0usize..7).prop_map(|(line, spaces)| Mutation::Indent { line, spaces }),
    ]
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let boundary = |at: usize| {
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let line = |i: usize| i % lines.len().max(1);
    match *mutation {
        Mutation::Delete { at, len } => {
            let start = boundary(at);
            let end = boundary(start + len);
            return format!("{}{}", &text[..start], &text[end.max(start)..]);
        }
        Mutation::Insert { at, token } => {
            let at = boundary(at);
            return format!("{}{}{}", &text[..at], TOKENS[token], &text[at..]);
        }
        _ if lines.is_empty() => {}
        Mutation::DuplicateLine { line: l } => {
            let l = line(l);
            lines.insert(l, lines[l].clone());
        }
        Mutation::SwapLines { a, b } => {
            let (a, b) = (line(a), line(b));
            lines.swap(a, b);
        }
        Mutation::Indent { line: l, spaces } => {
            let l = line(l);
            lines[l] = format!("{}{}", " ".repeat(spaces), lines[l].trim_start());
        }
    }
    lines.join("\n")
}

fn load(text: &str) {
    let result = portcullis::config::load_str("fuzz.yaml", text, Path::new("."));
    if let Err(error) = result {
        // Every error is located in the file it came from.
        for diagnostic in error.0.errors() {
            assert_eq!(diagnostic.file, "fuzz.yaml");
        }
        assert!(error.0.has_errors());
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: support::fuzz_cases(768),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_configs_never_panic(seed in any::<prop::sample::Index>(), mutations in prop::collection::vec(mutation(), 1..6)) {
        let seeds = seeds();
        let mut text = seed.get(&seeds).clone();
        for m in &mutations {
            text = apply(&text, m);
        }
        load(&text);
    }

    #[test]
    fn random_text_never_panics(text in "[ -~\\n\\t]{0,400}") {
        load(&text);
    }
}
