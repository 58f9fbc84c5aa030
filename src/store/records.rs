use anyhow::Result;
use futures::Stream;

use super::Store;
use crate::domain::review::Annotation;
use crate::domain::{Item, Pair, Query, Rationale, ScoreDist};

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
    /// mode, source, confidence, errors), the item's and pair's outside ids and split come back
    /// empty. Each column costs the statement: 1M pairs, 3.0 → 1.2–1.6 s in the sqlite3 shell.
    pub labels_only: bool,
}

/// The picked judgment is joined by the id kept on the pair (migrations/0008). Annotations are
/// rare: `p.reviewed` (set when a pair gets its first) skips the aggregate's setup for the
/// pairs without any (1M pairs: 3.0 → 2.5 s for the statement).
fn sql(q: &RecordQuery) -> String {
    let rationale = if q.without_rationale || q.labels_only {
        "NULL"
    } else {
        "j.rationale"
    };
    let (item_ext_id, split, provenance, details) = if q.labels_only {
        ("NULL", "NULL", "NULL, NULL", "NULL, NULL, NULL, NULL, NULL")
    } else {
        (
            "i.ext_id",
            "p.split",
            "j.model, j.prompt_hash",
            "j.mode, j.dist_source, j.confidence, j.parse_error, j.truncated",
        )
    };
    let (student_cols, student_join) = match q.student {
        Some(_) => (
            "s.score, s.distribution",
            "LEFT JOIN student_scores s ON s.model_id = ? AND s.pair_id = p.id",
        ),
        None => ("NULL, NULL", ""),
    };
    format!(
        "SELECT p.id, p.gold_label, {split}, p.origin, q.ext_id, q.text, {item_ext_id}, i.title, i.description, \
     i.brand, i.attributes, p.query_id, {provenance}, j.label, j.distribution, {rationale}, \
     CASE WHEN p.reviewed THEN \
       (SELECT json_group_array(json_object('id', a.id, 'judgment_id', a.judgment_id, 'annotator', a.annotator, \
        'created_at', a.created_at, 'change', json(a.after))) FROM annotations a WHERE a.pair_id = p.id) END, \
     j.id, {details}, {student_cols} \
     FROM pairs p JOIN queries q ON q.id = p.query_id JOIN items i ON i.id = p.item_id \
     LEFT JOIN judgments j ON j.id = p.judgment_id {student_join} \
     WHERE (? OR p.origin NOT LIKE 'augmented%') \
     ORDER BY p.query_id, p.item_id"
    )
}

/// A row as read, its JSON columns still text. The reader thread only steps the statement and
/// copies columns; `parse_json` runs on the consumer's thread, so that the two share the work
/// (the reader was the export's bottleneck).
struct RawRecord {
    record: PairRecord,
    attributes: String,
    distribution: Option<String>,
    rationale: Option<String>,
    annotations: Option<String>,
    student_distribution: Option<String>,
}

fn read_row(r: &rusqlite::Row) -> Result<RawRecord> {
    // Columns a `labels_only` read leaves NULL.
    let text = |i: usize| -> rusqlite::Result<String> {
        Ok(r.get::<_, Option<String>>(i)?.unwrap_or_default())
    };
    let id: Option<i64> = r.get(18)?;
    let judgment = match id {
        None => None,
        Some(id) => Some(PickedJudgment {
            id,
            model: text(12)?,
            prompt_hash: text(13)?,
            mode: text(19)?,
            label: r.get(14)?,
            distribution: ScoreDist { probs: Vec::new() },
            dist_source: text(20)?,
            confidence: r.get(21)?,
            rationale: None,
            parse_error: r.get(22)?,
            truncated: r.get::<_, Option<bool>>(23)?.unwrap_or_default(),
        }),
    };
    Ok(RawRecord {
        record: PairRecord {
            pair: Pair {
                id: r.get(0)?,
                gold_label: r.get(1)?,
                split: r.get(2)?,
                origin: r.get(3)?,
                query: Query {
                    ext_id: r.get(4)?,
                    text: r.get(5)?,
                },
                item: Item {
                    ext_id: text(6)?,
                    title: r.get(7)?,
                    description: r.get(8)?,
                    brand: r.get(9)?,
                    attributes: serde_json::Value::Null,
                },
            },
            query_key: r.get(11)?,
            judgment,
            annotations: Vec::new(),
            student_score: r.get(24)?,
            student_distribution: None,
        },
        attributes: r.get(10)?,
        distribution: r.get(15)?,
        rationale: r.get(16)?,
        annotations: r.get(17)?,
        student_distribution: r.get(25)?,
    })
}

/// Boxed: a record is ~750 bytes, and the stream and the export move each one several times
/// (a tenth of the export's writer thread was `memmove`).
fn parse_json(raw: RawRecord) -> Result<Box<PairRecord>> {
    let mut record = raw.record;
    let pair_id = record.pair.id;
    record.pair.item.attributes =
        serde_json::from_str(&raw.attributes).unwrap_or(serde_json::Value::Null);
    if let Some(j) = record.judgment.as_mut() {
        if let Some(dist) = raw.distribution {
            j.distribution.probs = serde_json::from_str(&dist)?;
        }
        j.rationale = raw
            .rationale
            .map(|t| serde_json::from_str(&t))
            .transpose()?;
    }
    record.annotations = match raw.annotations.as_deref() {
        None | Some("[]") => Vec::new(),
        Some(t) => {
            let mut v: Vec<serde_json::Value> = serde_json::from_str(t)?;
            v.iter_mut()
                .map(|a| {
                    a["pair_id"] = pair_id.into();
                    Ok(serde_json::from_value(a.take())?)
                })
                .collect::<Result<_>>()?
        }
    };
    record.student_distribution = raw
        .student_distribution
        .map(|t| serde_json::from_str(&t))
        .transpose()?;
    Ok(Box::new(record))
}

impl Store {
    /// Every pair with its picked judgment, its annotations and (when `q.student` names a
    /// student model) that student's score, grouped by query (all pairs of a query are adjacent),
    /// streamed: memory stays flat in the number of pairs.
    pub fn pair_records(&self, q: RecordQuery) -> impl Stream<Item = Result<Box<PairRecord>>> + '_ {
        let mut params: Vec<rusqlite::types::Value> =
            q.student.into_iter().map(Into::into).collect();
        params.push(q.include_augmented.into());
        super::direct::stream(self.path.clone(), sql(&q), params, read_row, parse_json)
    }

    /// Query ids in the store (imported ids), for assigning splits.
    pub async fn query_ext_ids(&self) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT ext_id FROM queries ORDER BY ext_id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn count_judgments(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM judgments")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn count_pairs(&self, include_augmented: bool) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM pairs WHERE (? OR origin NOT LIKE 'augmented%')",
        )
        .bind(include_augmented)
        .fetch_one(&self.pool)
        .await?)
    }
}

impl Store {
    /// For `workbench bench export` only: one synthetic score-mode judgment per pair, so that an
    /// export of a generated million-pair database has teacher distributions to write.
    pub async fn add_synthetic_judgments(&self) -> Result<u64> {
        let done = sqlx::query(
            "INSERT OR IGNORE INTO judgments (pair_id, model, prompt_hash, mode, label, distribution, dist_source, raw_output) \
             SELECT id, 'synthetic', 'bench', 'score', \
               CASE id % 4 WHEN 0 THEN 'E' WHEN 1 THEN 'S' WHEN 2 THEN 'C' ELSE 'I' END, \
               CASE id % 4 WHEN 0 THEN '[0.7,0.2,0.05,0.05]' WHEN 1 THEN '[0.2,0.6,0.1,0.1]' \
                 WHEN 2 THEN '[0.1,0.2,0.6,0.1]' ELSE '[0.05,0.05,0.1,0.8]' END, 'logprobs', '' FROM pairs",
        )
        .execute(&self.pool)
        .await?;
        sqlx::query(
            "UPDATE pairs SET judgment_id = (SELECT max(id) FROM judgments j WHERE j.pair_id = pairs.id), \
             teacher_label = CASE id % 4 WHEN 0 THEN 'E' WHEN 1 THEN 'S' WHEN 2 THEN 'C' ELSE 'I' END, \
             teacher_p = CASE id % 4 WHEN 0 THEN 0.7 WHEN 1 THEN 0.6 WHEN 2 THEN 0.6 ELSE 0.8 END WHERE teacher_label IS NULL",
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
