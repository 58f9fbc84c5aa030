use anyhow::Result;
use sqlx::{ColumnIndex, Database, Decode, Encode, QueryBuilder, Row, Type};

use super::annotations::annotations_of;
use super::{Store, newest_student};
use crate::domain::ScoreDist;
use crate::domain::review::derive;
use crate::domain::text::search_words;

/// Which pairs the review queue shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueFilter {
    #[default]
    All,
    /// No annotation yet.
    Unreviewed,
    /// Judged by the teacher and not reviewed yet: the work left (its count is what remains).
    ToReview,
    /// The teacher's label differs from the gold label.
    Disagree,
    /// The teacher's top label has less than half the mass.
    LowConfidence,
    /// The teacher's output did not parse.
    ParseError,
    /// An audit finding points at the pair.
    Flagged,
    /// The newest student's label differs from the teacher's.
    TeacherStudent,
}

impl QueueFilter {
    pub const ALL: [QueueFilter; 8] = [
        QueueFilter::All,
        QueueFilter::Unreviewed,
        QueueFilter::ToReview,
        QueueFilter::Disagree,
        QueueFilter::LowConfidence,
        QueueFilter::ParseError,
        QueueFilter::Flagged,
        QueueFilter::TeacherStudent,
    ];

    pub fn name(self) -> &'static str {
        match self {
            QueueFilter::All => "all",
            QueueFilter::Unreviewed => "unreviewed",
            QueueFilter::ToReview => "to review",
            QueueFilter::Disagree => "teacher ≠ gold",
            QueueFilter::LowConfidence => "low confidence",
            QueueFilter::ParseError => "parse error",
            QueueFilter::Flagged => "flagged by audit",
            QueueFilter::TeacherStudent => "teacher ≠ student",
        }
    }

    /// Conditions match the partial indexes of migrations/0003 word for word, so SQLite walks
    /// the index instead of the table.
    fn sql(self) -> &'static str {
        match self {
            QueueFilter::All => "TRUE",
            QueueFilter::Unreviewed => "reviewed = 0",
            QueueFilter::ToReview => "reviewed = 0 AND judgment_id IS NOT NULL",
            QueueFilter::Disagree => "teacher_label <> gold_label",
            QueueFilter::LowConfidence => "teacher_p < 0.5",
            QueueFilter::ParseError => "teacher_parse_error = 1",
            QueueFilter::Flagged => "id IN (SELECT pair_id FROM audit_findings)",
            QueueFilter::TeacherStudent => concat!(
                "EXISTS (SELECT 1 FROM student_scores s WHERE s.model_id = ",
                newest_student!(),
                " AND s.pair_id = p.id AND s.label <> p.teacher_label)"
            ),
        }
    }
}

/// The order of the review queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueSort {
    /// As imported.
    #[default]
    Pair,
    /// The teacher's least confident judgments first (unjudged pairs last).
    Confidence,
    /// Pairs where the teacher contradicts the gold label first, the most confident first.
    Disagreement,
    /// Grouped by query.
    Query,
}

impl QueueSort {
    pub const ALL: [QueueSort; 4] = [
        QueueSort::Pair,
        QueueSort::Confidence,
        QueueSort::Disagreement,
        QueueSort::Query,
    ];

    pub fn name(self) -> &'static str {
        match self {
            QueueSort::Pair => "pair",
            QueueSort::Confidence => "confidence ↑",
            QueueSort::Disagreement => "disagreement",
            QueueSort::Query => "query",
        }
    }

    /// The sort key over the columns of `pairs`; ties go by pair id. Each has an index on
    /// `(key, id)` in migrations/0005, written the same way.
    fn key(self) -> &'static str {
        match self {
            QueueSort::Pair => "0.0",
            QueueSort::Confidence => "COALESCE(teacher_p, 2.0)",
            QueueSort::Disagreement => {
                "COALESCE(CASE WHEN teacher_label <> gold_label THEN -teacher_p END, 1.0)"
            }
            QueueSort::Query => "CAST(query_id AS REAL)",
        }
    }

    /// The key as PostgreSQL's indexes (migrations/postgres/0005) write it: the same, but the
    /// query order is on the integer itself, compared with an integer cursor.
    fn pg_key(self) -> &'static str {
        match self {
            QueueSort::Pair => "CAST(0 AS DOUBLE PRECISION)",
            QueueSort::Query => "query_id",
            other => other.key(),
        }
    }
}

/// A position in the queue for keyset paging: a sort key and a pair id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    pub key: f64,
    pub id: i64,
}

impl Cursor {
    /// Before every row.
    pub const START: Cursor = Cursor {
        key: f64::NEG_INFINITY,
        id: 0,
    };
    /// After every row.
    pub const END: Cursor = Cursor {
        key: f64::INFINITY,
        id: i64::MAX,
    };

    /// The position of `row`, or (`just_before`) the position right before it.
    pub fn at(row: &QueueRow, just_before: bool) -> Cursor {
        Cursor {
            key: row.sort_key,
            id: row.pair_id - i64::from(just_before),
        }
    }
}

/// One line of the review queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRow {
    pub pair_id: i64,
    pub query: String,
    pub title: String,
    pub gold_label: Option<String>,
    pub teacher_label: Option<String>,
    pub teacher_dist: Option<ScoreDist>,
    pub parse_error: bool,
    pub reviewed: bool,
    /// What the humans made of a reviewed pair: their label's key, else `✓` (accepted), `✗`
    /// (rejected) or `✎` (corrected, label kept).
    pub human: Option<String>,
    pub findings: i64,
    /// The row's key in the queue's sort order.
    pub sort_key: f64,
    /// The newest student's score in [0, 1] and the label it stands for, when it scored the pair.
    pub student_score: Option<f64>,
    pub student_label: Option<String>,
    /// The query's id in the store.
    pub query_id: i64,
}

/// What narrows the queue besides its filter: a search (`/`), one teacher label (`L`), one
/// query (`Q`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueScope {
    pub search: Option<String>,
    pub label: Option<String>,
    pub query_id: Option<i64>,
}

impl QueueScope {
    fn push<DB: Database>(&self, q: &mut QueryBuilder<DB>, pg: bool)
    where
        for<'t> String: Encode<'t, DB> + Type<DB>,
        for<'t> i64: Encode<'t, DB> + Type<DB>,
    {
        push_search(q, self.search.as_deref(), pg);
        if let Some(label) = &self.label {
            q.push(" AND p.teacher_label = ").push_bind(label.clone());
        }
        if let Some(id) = self.query_id {
            q.push(" AND p.query_id = ").push_bind(id);
        }
    }
}

/// `/` in the review app: pairs whose item title or brand has every word of the search (FTS5,
/// each word a quoted prefix; on PostgreSQL the `items_search` tsvector, each word a prefix),
/// or whose query has every word. A search without a word (only punctuation) matches nothing;
/// the app says so before it gets here.
fn push_search<DB: Database>(q: &mut QueryBuilder<DB>, search: Option<&str>, pg: bool)
where
    for<'t> String: Encode<'t, DB> + Type<DB>,
{
    let Some(text) = search else { return };
    let words = search_words(text);
    if words.is_empty() {
        q.push(" AND FALSE");
        return;
    }
    if pg {
        let expr = words
            .iter()
            .map(|w| format!("{w}:*"))
            .collect::<Vec<_>>()
            .join(" & ");
        q.push(" AND (p.item_id IN (SELECT item_id FROM items_search WHERE search @@ to_tsquery('simple', ")
            .push_bind(expr)
            .push(")) OR p.query_id IN (SELECT id FROM queries WHERE TRUE");
    } else {
        let expr = words
            .iter()
            .map(|w| format!("\"{w}\"*"))
            .collect::<Vec<_>>()
            .join(" AND ");
        q.push(" AND (p.item_id IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ")
            .push_bind(expr)
            .push(") OR p.query_id IN (SELECT id FROM queries WHERE TRUE");
    }
    // SQLite's LIKE ignores ASCII case; PostgreSQL's ILIKE does the same.
    let like = if pg {
        " AND text ILIKE "
    } else {
        " AND text LIKE "
    };
    for w in words {
        // Words are letters and digits only: nothing in them is a LIKE wildcard.
        q.push(like).push_bind(format!("%{w}%"));
    }
    q.push("))");
}

/// The SQL of one queue page, on either backend.
fn push_page<DB: Database>(
    q: &mut QueryBuilder<DB>,
    pg: bool,
    (filter, sort, scope): (QueueFilter, QueueSort, &QueueScope),
    from: Cursor,
    backwards: bool,
    limit: usize,
) where
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> f64: Encode<'t, DB> + Type<DB>,
{
    let key = if pg { sort.pg_key() } else { sort.key() };
    q.push(format!(
        "SELECT p.id, q.text, i.title, p.gold_label, j.label, j.distribution, j.parse_error IS NOT NULL, \
         p.reviewed <> 0, (SELECT count(*) FROM audit_findings f WHERE f.pair_id = p.id), \
         CAST(p.k AS DOUBLE PRECISION), s.score, s.label, p.query_id \
         FROM (SELECT id, query_id, item_id, gold_label, reviewed, judgment_id, {key} AS k FROM pairs p WHERE {}",
        filter.sql()
    ));
    scope.push(q, pg);
    let (cmp, dir) = if backwards { ("<", " DESC") } else { (">", "") };
    if sort == QueueSort::Pair {
        q.push(format!(" AND id {cmp} ")).push_bind(from.id);
        q.push(format!(" ORDER BY id{dir} LIMIT "));
    } else {
        // A row-value comparison, which the database turns into a range on the sort's index.
        q.push(format!(" AND ({key}, id) {cmp} ("));
        if pg && sort == QueueSort::Query {
            // Saturates: the cursors before and after every row become i64's ends.
            q.push_bind(from.key as i64);
        } else {
            q.push_bind(from.key);
        }
        q.push(", ").push_bind(from.id).push(")");
        q.push(format!(" ORDER BY {key}{dir}, id{dir} LIMIT "));
    }
    q.push_bind(limit as i64);
    // The page is chosen on `pairs` alone (through a partial index when filtered); only its
    // rows are joined with their text and judgment.
    q.push(format!(
        ") p JOIN queries q ON q.id = p.query_id JOIN items i ON i.id = p.item_id LEFT JOIN judgments j ON j.id = p.judgment_id \
         LEFT JOIN student_scores s ON s.model_id = {newest} AND s.pair_id = p.id \
         ORDER BY p.k{dir}, p.id{dir}",
        newest = newest_student!()
    ));
}

fn queue_row<R: Row>(r: &R) -> Result<QueueRow>
where
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> f64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let dist: Option<String> = r.try_get(5)?;
    Ok(QueueRow {
        pair_id: r.try_get(0)?,
        query: r.try_get(1)?,
        title: r.try_get(2)?,
        gold_label: r.try_get(3)?,
        teacher_label: r.try_get(4)?,
        teacher_dist: dist
            .and_then(|d| serde_json::from_str(&d).ok())
            .map(|probs| ScoreDist { probs }),
        parse_error: r.try_get::<Option<bool>, _>(6)?.unwrap_or(false),
        reviewed: r.try_get(7)?,
        human: None,
        findings: r.try_get(8)?,
        sort_key: r.try_get(9)?,
        student_score: r.try_get(10)?,
        student_label: r.try_get(11)?,
        query_id: r.try_get(12)?,
    })
}

impl Store {
    /// A page of the queue by keyset: `limit` rows after (or, `backwards`, before) `from` in
    /// the `sort` order. No OFFSET: in pair order a page costs the same at any depth; the other
    /// orders are chosen on the `pairs` table alone.
    pub async fn queue_page(
        &self,
        filter: QueueFilter,
        sort: QueueSort,
        from: Cursor,
        backwards: bool,
        limit: usize,
        scope: &QueueScope,
    ) -> Result<Vec<QueueRow>> {
        let pg = self.is_postgres();
        let mut out: Vec<QueueRow> = super::with_pool!(self, |pool| {
            let mut q = QueryBuilder::new("");
            push_page(&mut q, pg, (filter, sort, scope), from, backwards, limit);
            let rows = q.build().fetch_all(pool).await?;
            rows.iter().map(queue_row).collect::<Result<_>>()
        })?;
        if backwards {
            out.reverse();
        }
        // Only the page's reviewed rows are read further: their annotations say what the
        // humans decided (a handful of indexed reads per page).
        if out.iter().any(|r| r.reviewed) {
            super::with_pool!(self, |pool| {
                let mut conn = pool.acquire().await?;
                for row in out.iter_mut().filter(|r| r.reviewed) {
                    let reviewed = derive(None, &annotations_of(&mut *conn, row.pair_id).await?);
                    row.human = Some(match reviewed.human_label {
                        Some(label) => label,
                        None if reviewed.rejected => "✗".into(),
                        None if reviewed.accepted => "✓".into(),
                        None => "✎".into(),
                    });
                }
            });
        }
        Ok(out)
    }

    /// How many pairs pass a filter, and how many of all pairs are reviewed.
    pub async fn queue_counts(
        &self,
        filter: QueueFilter,
        scope: &QueueScope,
    ) -> Result<(i64, i64)> {
        let pg = self.is_postgres();
        // All pairs less the unreviewed, which the partial index `pairs_unreviewed` counts.
        const REVIEWED: &str =
            "SELECT (SELECT count(*) FROM pairs) - (SELECT count(*) FROM pairs WHERE reviewed = 0)";
        super::with_pool!(self, |pool| {
            let mut q = QueryBuilder::new(format!(
                "SELECT count(*) FROM pairs p WHERE {}",
                filter.sql()
            ));
            scope.push(&mut q, pg);
            let total: i64 = q.build_query_scalar().fetch_one(pool).await?;
            let reviewed: i64 = sqlx::query_scalar(REVIEWED).fetch_one(pool).await?;
            Ok((total, reviewed))
        })
    }

    /// The pair ids of a pair, by its database id.
    pub async fn pair_by_id(&self, id: i64) -> Result<Option<crate::domain::Pair>> {
        let sql = format!("SELECT {} WHERE p.id = $1", super::pairs::PAIR_COLUMNS);
        super::with_pool!(self, |pool| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(super::pairs::pair_from_row).transpose()
        })
    }
}
