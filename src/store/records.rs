use anyhow::{Context, Result};
use futures::{Stream, StreamExt};
use sqlx::Row;

use super::bulk_read::{Arena, Span};
use super::{Db, Store};
use crate::domain::review::Annotation;
use crate::domain::{Item, Pair, Query, Rationale, ScoreDist, SplitQuery, SplitSpec, Splits};

/// The teacher judgment that stands for a pair: the newest one with a rationale, else the newest
/// one (`PICKED_JUDGMENT`, kept on the pair as `pairs.judgment_id`).
#[derive(Debug, Clone)]
pub struct PickedJudgment {
    pub id: i64,
    pub model: String,
    pub prompt_hash: String,
    pub mode: String,
    pub label: Option<String>,
    pub distribution: ScoreDist,
    /// `logprobs`, `votes` (self-consistency samples) or `parsed`.
    pub dist_source: String,
    /// With votes: the share of samples that agree with the majority label.
    pub confidence: Option<f64>,
    pub rationale: Option<Rationale>,
    pub parse_error: Option<String>,
    pub truncated: bool,
}

/// Everything the export, the audit and the metrics need about one pair, read in one pass.
#[derive(Debug, Clone)]
pub struct PairRecord {
    pub pair: Pair,
    pub query_key: i64,
    pub judgment: Option<PickedJudgment>,
    pub annotations: Vec<Annotation>,
    /// The score of the student asked for, when it scored this pair, and its distribution
    /// over the scale when it gave one.
    pub student_score: Option<f64>,
    pub student_distribution: Option<Vec<f64>>,
}

/// Which pairs `pair_records` reads, and how much of each.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordQuery {
    /// Also the pairs `workbench augment` added.
    pub include_augmented: bool,
    /// Read this student model's score of each pair.
    pub student: Option<i64>,
    /// Leave the teacher's rationale out, for readers of labels and distributions only: parsing
    /// it is most of the cost of reading a CoT judgment.
    pub without_rationale: bool,
    /// Read only what the export's label formats write (texts, labels, distributions, origin,
    /// annotations); implies `without_rationale`. The judgment's provenance (model, prompt hash,
    /// mode, source, confidence, errors), the query's and item's outside ids and the pair's split
    /// come back empty (`PairRecord::query_key` tells queries apart): each column read costs
    /// the statement time on every pair.
    pub labels_only: bool,
}

/// When a column of the statement is read; otherwise the statement selects NULL in its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Always,
    /// Not for `labels_only` reads: the judgment's provenance, the query's and item's outside
    /// ids, the split.
    Details,
    /// Not for `without_rationale` or `labels_only` reads.
    Rationale,
    /// Only when `student` names a model.
    Student,
}

impl Need {
    fn met(self, q: &RecordQuery) -> bool {
        match self {
            Need::Always => true,
            Need::Details => !q.labels_only,
            Need::Rationale => !(q.labels_only || q.without_rationale),
            Need::Student => q.student.is_some(),
        }
    }
}

/// The annotations of a pair as a JSON array. Annotations are rare: `p.reviewed` (set when a
/// pair gets its first) skips the aggregate's setup for the pairs without any.
const ANNOTATIONS_JSON: &str = "CASE WHEN p.reviewed THEN \
    (SELECT json_group_array(json_object('id', a.id, 'judgment_id', a.judgment_id, 'annotator', a.annotator, \
     'created_at', a.created_at, 'change', json(a.after))) FROM annotations a WHERE a.pair_id = p.id) END";

/// The same on PostgreSQL, in the annotations' id order (which SQLite's index walk gives).
const PG_ANNOTATIONS_JSON: &str = "CASE WHEN p.reviewed <> 0 THEN \
    (SELECT json_agg(json_build_object('id', a.id, 'judgment_id', a.judgment_id, 'annotator', a.annotator, \
     'created_at', a.created_at, 'change', a.after::json) ORDER BY a.id)::text FROM annotations a WHERE a.pair_id = p.id) END";

/// The statement's columns in order: their SQL, whether they are text, and when they are read.
/// Each column costs the statement and the reader (1M pairs in the sqlite3 shell: 3.0 → 1.2–1.6 s
/// for a `labels_only` read), so a read selects NULL for what it does not need and skips it.
const COLUMNS: [(&str, bool, Need); col::COUNT] = [
    ("p.id", false, Need::Always),
    ("p.gold_label", true, Need::Always),
    ("p.split", true, Need::Details),
    ("p.origin", true, Need::Always),
    ("q.ext_id", true, Need::Details),
    ("q.text", true, Need::Always),
    ("i.ext_id", true, Need::Details),
    ("i.title", true, Need::Always),
    ("i.description", true, Need::Always),
    ("i.brand", true, Need::Always),
    ("i.attributes", true, Need::Always),
    ("p.query_id", false, Need::Always),
    ("j.model", true, Need::Details),
    ("j.prompt_hash", true, Need::Details),
    ("j.label", true, Need::Always),
    ("j.distribution", true, Need::Always),
    ("j.rationale", true, Need::Rationale),
    (ANNOTATIONS_JSON, true, Need::Always),
    ("j.id", false, Need::Always),
    ("j.mode", true, Need::Details),
    ("j.dist_source", true, Need::Details),
    ("j.confidence", false, Need::Details),
    ("j.parse_error", true, Need::Details),
    ("j.truncated", false, Need::Details),
    ("s.score", false, Need::Student),
    ("s.distribution", true, Need::Student),
];

/// The picked judgment is joined by the id kept on the pair (migrations/0008). `pg`: in
/// PostgreSQL's dialect, where a column left out is a typed NULL and flags are integers.
fn sql(q: &RecordQuery, pg: bool) -> String {
    let columns: Vec<&str> = COLUMNS
        .iter()
        .map(|&(expr, text, need)| match (need.met(q), pg) {
            (true, false) => expr,
            (true, true) if expr == ANNOTATIONS_JSON => PG_ANNOTATIONS_JSON,
            (true, true) if expr == "j.truncated" => "j.truncated <> 0",
            (true, true) => expr,
            (false, false) => "NULL",
            (false, true) if text => "NULL::text",
            (false, true) => "NULL::float8",
        })
        .collect();
    let student_join = match q.student {
        Some(_) => "LEFT JOIN student_scores s ON s.model_id = $2 AND s.pair_id = p.id",
        None => "",
    };
    format!(
        "SELECT {} \
     FROM pairs p JOIN queries q ON q.id = p.query_id JOIN items i ON i.id = p.item_id \
     LEFT JOIN judgments j ON j.id = p.judgment_id {student_join} \
     WHERE ($1 OR p.origin NOT LIKE 'augmented%') \
     ORDER BY p.query_id, p.item_id",
        columns.join(", ")
    )
}

/// The columns `q`'s statement fills, the ones the reader reads.
#[derive(Debug, Clone)]
struct Filled {
    /// The text columns, by number.
    text: Vec<usize>,
    /// The numbers read only with `Need::Details` and `Need::Student`.
    details: bool,
    student: bool,
}

impl Filled {
    fn of(q: &RecordQuery) -> Filled {
        Filled {
            text: (0..col::COUNT)
                .filter(|&i| COLUMNS[i].1 && COLUMNS[i].2.met(q))
                .collect(),
            details: Need::Details.met(q),
            student: Need::Student.met(q),
        }
    }
}

/// The statement's columns, in order (see `sql`).
mod col {
    pub const ID: usize = 0;
    pub const GOLD_LABEL: usize = 1;
    pub const SPLIT: usize = 2;
    pub const ORIGIN: usize = 3;
    pub const QUERY_EXT_ID: usize = 4;
    pub const QUERY_TEXT: usize = 5;
    pub const ITEM_EXT_ID: usize = 6;
    pub const TITLE: usize = 7;
    pub const DESCRIPTION: usize = 8;
    pub const BRAND: usize = 9;
    pub const ATTRIBUTES: usize = 10;
    pub const QUERY_KEY: usize = 11;
    pub const MODEL: usize = 12;
    pub const PROMPT_HASH: usize = 13;
    pub const LABEL: usize = 14;
    pub const DISTRIBUTION: usize = 15;
    pub const RATIONALE: usize = 16;
    pub const ANNOTATIONS: usize = 17;
    pub const JUDGMENT_ID: usize = 18;
    pub const MODE: usize = 19;
    pub const DIST_SOURCE: usize = 20;
    pub const CONFIDENCE: usize = 21;
    pub const PARSE_ERROR: usize = 22;
    pub const TRUNCATED: usize = 23;
    pub const STUDENT_SCORE: usize = 24;
    pub const STUDENT_DISTRIBUTION: usize = 25;
    pub const COUNT: usize = 26;
}

/// A row as read: its numbers, and where its text columns sit in the chunk's arena. The reader
/// thread only steps the statement and copies bytes; strings and JSON are made by `decode` on
/// the consumer's thread, so that the two share the work (the reader was the export's
/// bottleneck).
struct RawRecord {
    id: i64,
    query_key: i64,
    judgment_id: Option<i64>,
    confidence: Option<f64>,
    truncated: Option<bool>,
    student_score: Option<f64>,
    /// By column number; `Span::NULL` for NULL and for the numeric columns.
    text: [Span; col::COUNT],
}

fn read_row(r: &rusqlite::Row, arena: &mut Arena, filled: &Filled) -> Result<RawRecord> {
    let mut text = [Span::NULL; col::COUNT];
    for &i in &filled.text {
        text[i] = arena.text(r, i)?;
    }
    let (confidence, truncated) = if filled.details {
        (r.get(col::CONFIDENCE)?, r.get(col::TRUNCATED)?)
    } else {
        (None, None)
    };
    Ok(RawRecord {
        id: r.get(col::ID)?,
        query_key: r.get(col::QUERY_KEY)?,
        judgment_id: r.get(col::JUDGMENT_ID)?,
        confidence,
        truncated,
        student_score: if filled.student {
            r.get(col::STUDENT_SCORE)?
        } else {
            None
        },
        text,
    })
}

/// A PostgreSQL row as `read_row` reads a SQLite one (its text copied into `arena`).
fn read_pg_row(r: &sqlx::postgres::PgRow, arena: &mut Arena, filled: &Filled) -> Result<RawRecord> {
    let mut text = [Span::NULL; col::COUNT];
    for &i in &filled.text {
        text[i] = arena.push(r.try_get::<Option<&str>, _>(i)?);
    }
    let (confidence, truncated) = if filled.details {
        (r.try_get(col::CONFIDENCE)?, r.try_get(col::TRUNCATED)?)
    } else {
        (None, None)
    };
    Ok(RawRecord {
        id: r.try_get(col::ID)?,
        query_key: r.try_get(col::QUERY_KEY)?,
        judgment_id: r.try_get(col::JUDGMENT_ID)?,
        confidence,
        truncated,
        student_score: if filled.student {
            r.try_get(col::STUDENT_SCORE)?
        } else {
            None
        },
        text,
    })
}

/// Builds the record: its strings, and its JSON columns parsed. Boxed: a record is ~750 bytes,
/// and the stream and the export move each one several times (a tenth of the export's writer
/// thread was `memmove`).
fn decode(raw: RawRecord, arena: &Arena) -> Result<Box<PairRecord>> {
    let opt = |i: usize| arena.string(raw.text[i]);
    // Columns a `labels_only` read leaves NULL come back empty.
    let text = |i: usize| opt(i).unwrap_or_default();
    let required = |i: usize| -> Result<String> {
        opt(i).with_context(|| format!("pair {}: column {i} is NULL", raw.id))
    };
    let json = |i: usize| arena.str(raw.text[i]);
    let judgment = match raw.judgment_id {
        None => None,
        Some(id) => Some(PickedJudgment {
            id,
            model: text(col::MODEL),
            prompt_hash: text(col::PROMPT_HASH),
            mode: text(col::MODE),
            label: opt(col::LABEL),
            distribution: ScoreDist {
                probs: match json(col::DISTRIBUTION) {
                    Some(t) => serde_json::from_str(t)?,
                    None => Vec::new(),
                },
            },
            dist_source: text(col::DIST_SOURCE),
            confidence: raw.confidence,
            rationale: json(col::RATIONALE).map(serde_json::from_str).transpose()?,
            parse_error: opt(col::PARSE_ERROR),
            truncated: raw.truncated.unwrap_or_default(),
        }),
    };
    let annotations = match json(col::ANNOTATIONS) {
        None | Some("[]") => Vec::new(),
        Some(t) => {
            let mut v: Vec<serde_json::Value> = serde_json::from_str(t)?;
            v.iter_mut()
                .map(|a| {
                    a["pair_id"] = raw.id.into();
                    Ok(serde_json::from_value(a.take())?)
                })
                .collect::<Result<_>>()?
        }
    };
    Ok(Box::new(PairRecord {
        pair: Pair {
            id: raw.id,
            gold_label: opt(col::GOLD_LABEL),
            split: opt(col::SPLIT),
            origin: required(col::ORIGIN)?,
            query: Query {
                ext_id: text(col::QUERY_EXT_ID),
                text: required(col::QUERY_TEXT)?,
            },
            item: Item {
                ext_id: text(col::ITEM_EXT_ID),
                title: required(col::TITLE)?,
                description: required(col::DESCRIPTION)?,
                brand: required(col::BRAND)?,
                attributes: json(col::ATTRIBUTES)
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or_default(),
            },
        },
        query_key: raw.query_key,
        judgment,
        annotations,
        student_score: raw.student_score,
        student_distribution: json(col::STUDENT_DISTRIBUTION)
            .map(serde_json::from_str)
            .transpose()?,
    }))
}

impl Store {
    /// Every pair with its picked judgment, its annotations and (when `q.student` names a
    /// student model) that student's score, grouped by query (all pairs of a query are adjacent),
    /// streamed: memory stays flat in the number of pairs.
    pub fn pair_records(&self, q: RecordQuery) -> impl Stream<Item = Result<Box<PairRecord>>> + '_ {
        let filled = Filled::of(&q);
        match &self.db {
            Db::Sqlite(_) => {
                // SQLite numbers `$N` parameters in the order they first appear: the student's
                // `$2` (in the join) comes before `$1`.
                let mut params: Vec<rusqlite::types::Value> =
                    q.student.into_iter().map(Into::into).collect();
                params.push(q.include_augmented.into());
                super::bulk_read::stream(
                    self.sqlite_path(),
                    sql(&q, false),
                    params,
                    move |row, arena| read_row(row, arena, &filled),
                    decode,
                )
                .left_stream()
            }
            // Rows stream off the connection as the server sends them (no result held whole).
            Db::Postgres(pool) => {
                let mut query =
                    sqlx::query(sqlx::AssertSqlSafe(sql(&q, true))).bind(q.include_augmented);
                if let Some(student) = q.student {
                    query = query.bind(student);
                }
                query
                    .fetch(pool)
                    .map(move |row| {
                        let mut arena = Arena::default();
                        let raw = read_pg_row(&row?, &mut arena, &filled)?;
                        decode(raw, &arena)
                    })
                    .right_stream()
            }
        }
    }

    /// Each query's split under `spec` (default: `imported` when every imported pair carries a
    /// split, else `by-query:80/10/10`), keyed by `PairRecord::query_key`, and the spec used.
    pub async fn splits(&self, spec: Option<&SplitSpec>, seed: u64) -> Result<(SplitSpec, Splits)> {
        let spec = match spec {
            Some(s) => s.clone(),
            None if self.every_imported_pair_has_a_split().await? => SplitSpec::Imported,
            None => SplitSpec::by_query_default(),
        };
        let imported = spec == SplitSpec::Imported;
        let queries = match &self.db {
            Db::Sqlite(_) => {
                let path = self.sqlite_path()?;
                tokio::task::spawn_blocking(move || split_queries(&path, imported)).await??
            }
            Db::Postgres(pool) => pg_split_queries(pool, imported).await?,
        };
        let splits = spec.assign(&queries, seed)?;
        Ok((spec, splits))
    }

    /// Whether there are imported pairs and each has a `split` (two index-free probes that stop
    /// at the first pair that settles it, not a count).
    async fn every_imported_pair_has_a_split(&self) -> Result<bool> {
        const SQL: &str = "SELECT EXISTS (SELECT 1 FROM pairs WHERE origin = 'import') \
             AND NOT EXISTS (SELECT 1 FROM pairs WHERE origin = 'import' AND split IS NULL)";
        super::with_pool!(self, |pool| Ok(sqlx::query_scalar(SQL)
            .fetch_one(pool)
            .await?))
    }

    /// Whether the teacher has judged anything (without counting a million judgments).
    pub async fn has_judgments(&self) -> Result<bool> {
        const SQL: &str = "SELECT EXISTS (SELECT 1 FROM judgments)";
        super::with_pool!(self, |pool| Ok(sqlx::query_scalar(SQL)
            .fetch_one(pool)
            .await?))
    }

    /// The pairs `pair_records` reads: all of them, or all less those `augment` added (found by
    /// the index `pairs_augmented`, migrations/0009, rather than by reading every pair).
    pub async fn count_pairs(&self, include_augmented: bool) -> Result<i64> {
        const SQL: &str = "SELECT (SELECT count(*) FROM pairs) - CASE WHEN $1 THEN 0 ELSE \
             (SELECT count(*) FROM pairs WHERE origin <> 'import' AND origin LIKE 'augmented%') END";
        super::with_pool!(self, |pool| Ok(sqlx::query_scalar(SQL)
            .bind(include_augmented)
            .fetch_one(pool)
            .await?))
    }
}

/// The store's queries for assigning splits; with `imported`, each query's distinct split
/// values over its imported pairs and how many of those pairs have none.
fn split_queries(path: &std::path::Path, imported: bool) -> Result<Vec<SplitQuery>> {
    let sql = if imported {
        "SELECT q.id, q.ext_id, group_concat(DISTINCT p.split), \
                sum(p.split IS NULL) + count(*) - count(p.id) \
         FROM queries q LEFT JOIN pairs p ON p.query_id = q.id AND p.origin = 'import' \
         GROUP BY q.id ORDER BY q.ext_id"
    } else {
        "SELECT id, ext_id, NULL, 0 FROM queries ORDER BY ext_id"
    };
    super::bulk_read::read_all(path, sql, |r| {
        let imported: Option<String> = r.get(2)?;
        Ok(SplitQuery {
            key: r.get(0)?,
            ext_id: r.get(1)?,
            imported: imported
                .map(|s| s.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            unsplit_pairs: r.get::<_, i64>(3)? as u64,
        })
    })
}

/// The same on PostgreSQL, in the same (bytewise) order of outside ids whatever the
/// database's collation.
async fn pg_split_queries(pool: &sqlx::PgPool, imported: bool) -> Result<Vec<SplitQuery>> {
    let sql = if imported {
        "SELECT q.id, q.ext_id, string_agg(DISTINCT p.split, ','), \
                (sum((p.split IS NULL)::int) + count(*) - count(p.id))::bigint \
         FROM queries q LEFT JOIN pairs p ON p.query_id = q.id AND p.origin = 'import' \
         GROUP BY q.id ORDER BY q.ext_id COLLATE \"C\""
    } else {
        "SELECT id, ext_id, NULL::text, 0::bigint FROM queries ORDER BY ext_id COLLATE \"C\""
    };
    let rows: Vec<(i64, String, Option<String>, i64)> = sqlx::query_as(sql).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(key, ext_id, imported, unsplit)| SplitQuery {
            key,
            ext_id,
            imported: imported
                .map(|s| s.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            unsplit_pairs: unsplit as u64,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `col`'s numbers name the columns `COLUMNS` lists there, and a `labels_only` read fills
    /// what the label formats need and nothing of a judgment's provenance.
    #[test]
    fn column_numbers_match_the_column_table() {
        let named = [
            (col::ID, "p.id"),
            (col::GOLD_LABEL, "p.gold_label"),
            (col::SPLIT, "p.split"),
            (col::ORIGIN, "p.origin"),
            (col::QUERY_EXT_ID, "q.ext_id"),
            (col::QUERY_TEXT, "q.text"),
            (col::ITEM_EXT_ID, "i.ext_id"),
            (col::TITLE, "i.title"),
            (col::DESCRIPTION, "i.description"),
            (col::BRAND, "i.brand"),
            (col::ATTRIBUTES, "i.attributes"),
            (col::QUERY_KEY, "p.query_id"),
            (col::MODEL, "j.model"),
            (col::PROMPT_HASH, "j.prompt_hash"),
            (col::LABEL, "j.label"),
            (col::DISTRIBUTION, "j.distribution"),
            (col::RATIONALE, "j.rationale"),
            (col::ANNOTATIONS, ANNOTATIONS_JSON),
            (col::JUDGMENT_ID, "j.id"),
            (col::MODE, "j.mode"),
            (col::DIST_SOURCE, "j.dist_source"),
            (col::CONFIDENCE, "j.confidence"),
            (col::PARSE_ERROR, "j.parse_error"),
            (col::TRUNCATED, "j.truncated"),
            (col::STUDENT_SCORE, "s.score"),
            (col::STUDENT_DISTRIBUTION, "s.distribution"),
        ];
        assert_eq!(named.len(), col::COUNT);
        for (i, expr) in named {
            assert_eq!(COLUMNS[i].0, expr, "column {i}");
        }
        let lean = Filled::of(&RecordQuery {
            labels_only: true,
            ..RecordQuery::default()
        });
        assert!(!lean.details && !lean.student);
        for needed in [
            col::GOLD_LABEL,
            col::ORIGIN,
            col::QUERY_TEXT,
            col::TITLE,
            col::DESCRIPTION,
            col::BRAND,
            col::ATTRIBUTES,
            col::LABEL,
            col::DISTRIBUTION,
            col::ANNOTATIONS,
        ] {
            assert!(lean.text.contains(&needed), "column {needed}");
        }
        for left in [col::MODEL, col::PROMPT_HASH, col::RATIONALE, col::SPLIT] {
            assert!(!lean.text.contains(&left), "column {left}");
        }
        let full = Filled::of(&RecordQuery {
            student: Some(1),
            ..RecordQuery::default()
        });
        assert!(full.details && full.student);
        assert_eq!(full.text.len(), COLUMNS.iter().filter(|c| c.1).count());
        assert!(sql(&RecordQuery::default(), false).contains("j.rationale"));
        assert!(!sql(&RecordQuery::default(), true).contains("student_scores"));
    }
}
