//! Property tests of everything that reads what a user or a model wrote: the JSONL, CSV and
//! Parquet readers, the mapping spec, the label-scale TOML, the CoT parser and the search box.
//! Arbitrary input and mutations of real rows give either a value or an error that says where
//! (file, line, field), never a panic; malformed UTF-8 included.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use workbench::domain::LabelScale;
use workbench::domain::text::search_words;
use workbench::ingest::{FieldMap, RowReader};
use workbench::teacher::parse::{parse_label, parse_rationale};

/// The fixture's real rows, as bytes.
fn real_lines() -> &'static [Vec<u8>] {
    static LINES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    LINES.get_or_init(|| {
        std::fs::read_to_string(fixture())
            .unwrap()
            .lines()
            .take(40)
            .map(|l| l.as_bytes().to_vec())
            .collect()
    })
}

/// A change to a row's bytes: overwrite one, cut the row short, insert bytes, or delete a span.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        any::<usize>().prop_map(Edit::Truncate),
        (
            any::<usize>(),
            prop::collection::vec(
                prop_oneof![
                    any::<u8>(),
                    Just(b'"'),
                    Just(b','),
                    Just(b'\n'),
                    Just(b'\\'),
                    Just(b'{'),
                    Just(0xff),
                    Just(0xc3),
                ],
                1..6
            )
        )
            .prop_map(|(i, v)| Edit::Insert(i, v)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Edit::Delete(i, n)),
    ]
}

fn apply(mut row: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match e {
            Edit::Set(i, b) if !row.is_empty() => {
                let i = i % row.len();
                row[i] = *b;
            }
            Edit::Set(..) => {}
            Edit::Truncate(i) => {
                let i = at(*i, row.len());
                row.truncate(i);
            }
            Edit::Insert(i, v) => {
                let i = at(*i, row.len());
                row.splice(i..i, v.iter().copied());
            }
            Edit::Delete(i, n) => {
                let i = at(*i, row.len());
                let end = (i + n).min(row.len());
                row.drain(i..end);
            }
        }
    }
    row
}

/// A row: a real one mutated, or arbitrary bytes.
fn row() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => (0usize..40, prop::collection::vec(edit(), 0..4))
            .prop_map(|(i, edits)| apply(real_lines()[i % real_lines().len()].clone(), &edits)),
        1 => prop::collection::vec(any::<u8>(), 0..80),
    ]
}

/// Reads every row of `path` and checks each outcome: a row with its text, a row error naming
/// a line of the file and a field, or an error for the whole file naming it.
fn check_reader(path: &Path, lines: u64) -> Result<(), TestCaseError> {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let reader = match RowReader::open(path, FieldMap::default(), LabelScale::esci()) {
        Ok(r) => r,
        Err(e) => {
            let e = format!("{e:#}");
            prop_assert!(e.contains(&name), "a file error names the file: {e}");
            return Ok(());
        }
    };
    for item in reader {
        match item {
            Ok(Ok(row)) => {
                prop_assert!((1..=lines).contains(&row.line), "row line {}", row.line);
                prop_assert!(!row.query.trim().is_empty() && !row.title.trim().is_empty());
            }
            Ok(Err(e)) => {
                prop_assert!((1..=lines).contains(&e.line), "error line {}: {e}", e.line);
                prop_assert!(!e.field.is_empty() && !e.message.is_empty(), "{e}");
            }
            Err(e) => {
                let e = format!("{e:#}");
                prop_assert!(e.contains(&name), "a file error names the file: {e}");
                break;
            }
        }
    }
    Ok(())
}

fn lines_in(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64 + 1
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn jsonl_rows_are_read_or_named(rows in prop::collection::vec(row(), 1..12)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pairs.jsonl");
        let bytes = rows.join(&b'\n');
        std::fs::write(&path, &bytes).unwrap();
        check_reader(&path, lines_in(&bytes))?;
    }

    #[test]
    fn csv_rows_are_read_or_named(
        rows in prop::collection::vec(
            (prop::collection::vec(".{0,30}", 5), prop::collection::vec(edit(), 0..3)),
            1..10,
        ),
        header_edits in prop::collection::vec(edit(), 0..2),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pairs.csv");
        let header = apply(b"query_id,query,product_id,title,esci_label".to_vec(), &header_edits);
        let mut bytes = header;
        for (fields, edits) in rows {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(&fields).unwrap();
            bytes.push(b'\n');
            let mut line = w.into_inner().unwrap();
            line.pop();
            bytes.extend(apply(line, &edits));
        }
        std::fs::write(&path, &bytes).unwrap();
        check_reader(&path, lines_in(&bytes))?;
    }

    #[test]
    fn parquet_rows_are_read_or_named(
        rows in prop::collection::vec(
            (".{0,20}", prop::option::of(".{0,20}"), prop::option::of("[ESCIX]{0,2}")),
            1..20,
        ),
        edits in prop::collection::vec(edit(), 0..3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pairs.parquet");
        let bytes = apply(parquet_bytes(&rows), &edits);
        std::fs::write(&path, &bytes).unwrap();
        check_reader(&path, rows.len() as u64)?;
    }

    #[test]
    fn a_mapping_spec_parses_or_says_why(spec in "[a-z_=,\" ]{0,40}|.{0,40}") {
        match FieldMap::parse(&spec) {
            Ok(map) => prop_assert!(map.columns().iter().all(|c| !c.is_empty())),
            Err(e) => {
                let e = format!("{e:#}");
                prop_assert!(!e.is_empty());
            }
        }
    }

    #[test]
    fn a_label_scale_round_trips_or_is_refused(
        labels in prop::collection::vec(("[A-Za-z0-9_]{1,6}", ".{0,12}", -1.0f64..3.0), 0..5),
        edits in prop::collection::vec(edit(), 0..3),
    ) {
        let mut toml = String::from("name = \"mine\"\n");
        for (key, name, gain) in &labels {
            toml.push_str(&format!(
                "[[labels]]\nkey = {}\nname = {}\ngain = {gain:?}\ndefinition = \"d\"\n",
                toml_string(key), toml_string(name),
            ));
        }
        let valid = labels.len() >= 2
            && labels.iter().all(|l| l.2 >= 0.0)
            && labels.iter().enumerate().all(|(i, l)| labels[..i].iter().all(|o| o.0 != l.0));
        match LabelScale::from_toml(&toml) {
            Ok(scale) => {
                prop_assert!(valid, "accepted an invalid scale: {toml}");
                prop_assert_eq!(scale.keys().collect::<Vec<_>>(),
                    labels.iter().map(|l| l.0.as_str()).collect::<Vec<_>>());
            }
            Err(e) => prop_assert!(!valid && !e.to_string().is_empty(), "{e}: {toml}"),
        }
        // Mutated, the text parses to a valid scale or an error; never a panic.
        let mutated = apply(toml.into_bytes(), &edits);
        if let Ok(text) = String::from_utf8(mutated)
            && let Ok(scale) = LabelScale::from_toml(&text)
        {
            prop_assert!(scale.validate().is_ok());
        }
    }

    #[test]
    fn a_rationale_parses_back_or_says_why(
        analysis in ".{0,30}",
        dims in prop::collection::vec(
            ("[a-z]{1,8}", ".{0,10}", ".{0,10}", prop_oneof![
                Just("match"), Just("mismatch"), Just("partial"), Just("not mentioned"), Just("maybe")
            ]),
            0..5,
        ),
        label in prop_oneof![Just("E"), Just("S"), Just("C"), Just("I"), Just("Exact"), Just("Z")],
        prefix in ".{0,10}",
        edits in prop::collection::vec(edit(), 0..3),
    ) {
        let scale = LabelScale::esci();
        let json = serde_json::json!({
            "query_analysis": analysis,
            "item_analysis": "an item",
            "dimensions": dims.iter().map(|(n, q, i, v)| serde_json::json!({
                "name": n, "query_value": q, "item_value": i, "verdict": v, "note": ""
            })).collect::<Vec<_>>(),
            "conclusion": "so",
            "label": label,
        });
        let text = format!("{}{json}", prefix.replace(['{', '}'], ""));
        let valid = label != "Z" && dims.iter().all(|d| d.3 != "maybe");
        match parse_rationale(&text, &scale) {
            Ok(r) => {
                prop_assert!(valid, "accepted {text}");
                prop_assert_eq!(&r.query_analysis, &analysis);
                prop_assert_eq!(r.dimensions.len(), dims.len());
                prop_assert!(scale.index_of_key(&r.label).is_some());
            }
            Err(e) => prop_assert!(!valid && !e.is_empty(), "{e}: {text}"),
        }
        // Whatever the model wrote instead: a rationale on the scale, or a reason.
        let bytes = apply(text.into_bytes(), &edits);
        let mutated = String::from_utf8_lossy(&bytes);
        match parse_rationale(&mutated, &scale) {
            Ok(r) => prop_assert!(scale.index_of_key(&r.label).is_some()),
            Err(e) => prop_assert!(!e.is_empty()),
        }
        match parse_label(&mutated, &scale) {
            Ok(l) => prop_assert!(scale.index_of_key(&l).is_some()),
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn search_words_are_only_letters_and_digits(search in ".{0,60}") {
        for w in search_words(&search) {
            prop_assert!(!w.is_empty() && w.chars().all(char::is_alphanumeric), "{w:?}");
            prop_assert!(search.contains(&w));
        }
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A Parquet file of string columns as pandas writes one: query, title and, when given, the
/// label (null where absent).
fn parquet_bytes(rows: &[(String, Option<String>, Option<String>)]) -> Vec<u8> {
    use arrow_array::{ArrayRef, RecordBatch, StringArray};
    let query: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.0)));
    let title: ArrayRef = Arc::new(StringArray::from_iter(rows.iter().map(|r| r.1.as_deref())));
    let label: ArrayRef = Arc::new(StringArray::from_iter(rows.iter().map(|r| r.2.as_deref())));
    let batch =
        RecordBatch::try_from_iter([("query", query), ("title", title), ("esci_label", label)])
            .unwrap();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

/// Every byte of a small Parquet file overwritten in turn, with values that make lengths and
/// offsets negative, zero or huge: each damaged file is read or named, never a panic. Random
/// edits found a footer whose column chunk started at a negative offset, which the parquet crate
/// asserts on; this sweep covers every position of the footer, not only the ones a run draws.
#[test]
fn every_byte_of_a_parquet_file_damaged_is_read_or_named() {
    let rows: Vec<_> = (0..3)
        .map(|i| {
            (
                format!("query {i}"),
                Some(format!("title {i}")),
                Some("E".to_string()),
            )
        })
        .collect();
    let good = parquet_bytes(&rows);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pairs.parquet");
    for at in 0..good.len() {
        for value in [
            0x00,
            0x01,
            0x7f,
            0x80,
            0xff,
            good[at] ^ 0x01,
            good[at] ^ 0x40,
        ] {
            let mut bytes = good.clone();
            bytes[at] = value;
            std::fs::write(&path, &bytes).unwrap();
            if let Err(e) = check_reader(&path, rows.len() as u64) {
                panic!("byte {at} set to {value:#04x}: {e}");
            }
        }
    }
}

/// Whatever is typed into the review app's search box, the queue answers with rows or none,
/// never an SQL error, against a real database.
#[test]
fn any_search_typed_into_the_queue_answers_without_an_error() {
    use workbench::store::{Cursor, QueueFilter, QueueScope, QueueSort, Store};
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(Store::open(&db)).unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 300,
        ..ProptestConfig::default()
    });
    let typed = prop_oneof![
        ".{0,24}",
        "[\"*%_()\\-: ]{0,4}(fitbit|OR|NEAR|AND|NOT|shoe|a)?[\"*%_()\\-: ]{0,4}",
    ];
    runner
        .run(&typed, |search| {
            let rows = rt.block_on(store.queue_page(
                QueueFilter::All,
                QueueSort::Pair,
                Cursor::START,
                false,
                50,
                &QueueScope {
                    search: Some(search.clone()),
                    ..QueueScope::default()
                },
            ));
            let rows = rows.map_err(|e| TestCaseError::fail(format!("{search:?}: {e:#}")))?;
            if search_words(&search).is_empty() {
                prop_assert!(rows.is_empty(), "{search:?} has no word and matched");
            }
            Ok(())
        })
        .unwrap();
}
