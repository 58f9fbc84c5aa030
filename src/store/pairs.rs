use anyhow::Result;
use sqlx::{ColumnIndex, Database, Decode, Encode, QueryBuilder, Row, Type};

use super::{Store, with_pool};
use crate::domain::{Item, Pair, PairKey, Query};

/// Which pairs a teacher run takes.
#[derive(Debug, Clone, PartialEq)]
pub enum PairFilter {
    /// Pairs no teacher has judged yet.
    Unjudged,
    /// Every pair this model and prompt have not judged yet.
    All,
    /// Augmented pairs this model and prompt have not judged yet.
    Augmented,
    /// These pairs, where this model and prompt have not judged them yet.
    Keys(Vec<PairKey>),
}

impl PairFilter {
    /// `unjudged`, `all`, `augmented` or `QUERY_ID/PRODUCT_ID,…`, as `teach --only` takes it.
    pub fn parse(only: &str) -> Result<PairFilter, String> {
        Ok(match only {
            "unjudged" => PairFilter::Unjudged,
            "all" => PairFilter::All,
            "augmented" => PairFilter::Augmented,
            ids => PairFilter::Keys(
                ids.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        let (q, p) = s.split_once('/').ok_or_else(|| {
                            format!(
                                "{s:?}: expected unjudged, all, augmented or QUERY_ID/PRODUCT_ID,…"
                            )
                        })?;
                        Ok(PairKey {
                            query_id: q.to_string(),
                            product_id: p.to_string(),
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()?,
            ),
        })
    }
}

/// A pair with its query and item, as every read of pairs to judge joins them (a macro, so that
/// `concat!` can build constants from it).
macro_rules! pairs_joined {
    () => {
        "FROM pairs p JOIN queries q ON q.id = p.query_id JOIN items i ON i.id = p.item_id"
    };
}

pub(super) const PAIR_COLUMNS: &str = concat!(
    "p.id, p.gold_label, p.split, p.origin, q.ext_id, q.text, \
     i.ext_id, i.title, i.description, i.brand, i.attributes ",
    pairs_joined!()
);

/// Reads the first eleven columns of a row in `PAIR_COLUMNS` order, from either backend.
pub(super) fn pair_from_row<R: Row>(r: &R) -> Result<Pair>
where
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let attributes: String = r.try_get(10)?;
    Ok(Pair {
        id: r.try_get(0)?,
        gold_label: r.try_get(1)?,
        split: r.try_get(2)?,
        origin: r.try_get(3)?,
        query: Query {
            ext_id: r.try_get(4)?,
            text: r.try_get(5)?,
        },
        item: Item {
            ext_id: r.try_get(6)?,
            title: r.try_get(7)?,
            description: r.try_get(8)?,
            brand: r.try_get(9)?,
            attributes: serde_json::from_str(&attributes).unwrap_or_default(),
        },
    })
}

/// The condition of "still to judge by this (model, prompt hash, mode)" under a filter.
pub(super) fn push_to_judge<DB: Database>(
    q: &mut QueryBuilder<DB>,
    (model, prompt_hash, mode): (&str, &str, &str),
    filter: &PairFilter,
) where
    for<'t> String: Encode<'t, DB> + Type<DB>,
{
    match filter {
        PairFilter::Unjudged => {
            q.push("NOT EXISTS (SELECT 1 FROM judgments j WHERE j.pair_id = p.id)");
        }
        PairFilter::All | PairFilter::Augmented | PairFilter::Keys(_) => {
            q.push("NOT EXISTS (SELECT 1 FROM judgments j WHERE j.pair_id = p.id AND j.model = ")
                .push_bind(model.to_string())
                .push(" AND j.prompt_hash = ")
                .push_bind(prompt_hash.to_string())
                .push(" AND j.mode = ")
                .push_bind(mode.to_string())
                .push(")");
        }
    }
    match filter {
        PairFilter::Augmented => {
            q.push(" AND p.origin LIKE 'augmented%'");
        }
        PairFilter::Keys(keys) => {
            q.push(" AND (q.ext_id, i.ext_id) IN (VALUES ");
            let mut sep = q.separated(", ");
            for k in keys {
                sep.push("(").push_bind_unseparated(k.query_id.clone());
                sep.push_unseparated(", ")
                    .push_bind_unseparated(k.product_id.clone())
                    .push_unseparated(")");
            }
            q.push(")");
        }
        PairFilter::Unjudged | PairFilter::All => {}
    }
}

/// "Still to judge", then a keyset page of it: up to `limit` after pair id `after`, by id.
fn push_page_to_judge<DB: Database>(
    q: &mut QueryBuilder<DB>,
    run: (&str, &str, &str),
    filter: &PairFilter,
    after: i64,
    limit: usize,
) where
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    push_to_judge(q, run, filter);
    q.push(" AND p.id > ")
        .push_bind(after)
        .push(" ORDER BY p.id LIMIT ")
        .push_bind(limit as i64);
}

impl Store {
    /// A page of the pairs a teacher run should judge: up to `limit` after pair id `after`, in
    /// import order, skipping what this model, prompt and mode already judged. Paging by keyset
    /// keeps a run over millions of pairs flat in memory; skipping is what makes a killed run
    /// resume without duplicates.
    pub async fn pairs_to_judge(
        &self,
        run: (&str, &str, &str),
        filter: &PairFilter,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Pair>> {
        with_pool!(self, |pool| {
            let mut q = QueryBuilder::new(format!("SELECT {PAIR_COLUMNS} WHERE "));
            push_page_to_judge(&mut q, run, filter, after, limit);
            let rows = q.build().fetch_all(pool).await?;
            rows.iter().map(pair_from_row).collect()
        })
    }

    /// How many pairs `pairs_to_judge` would page through.
    pub async fn count_to_judge(
        &self,
        run: (&str, &str, &str),
        filter: &PairFilter,
    ) -> Result<u64> {
        let n: i64 = with_pool!(self, |pool| {
            let mut q = QueryBuilder::new(concat!("SELECT count(*) ", pairs_joined!(), " WHERE "));
            push_to_judge(&mut q, run, filter);
            q.build_query_scalar().fetch_one(pool).await?
        });
        Ok(n as u64)
    }

    /// The ids of a page of `pairs_to_judge`: what `teach --workers` hands its workers.
    pub async fn ids_to_judge(
        &self,
        run: (&str, &str, &str),
        filter: &PairFilter,
        after: i64,
        limit: usize,
    ) -> Result<Vec<i64>> {
        Ok(with_pool!(self, |pool| {
            let mut q = QueryBuilder::new(concat!("SELECT p.id ", pairs_joined!(), " WHERE "));
            push_page_to_judge(&mut q, run, filter, after, limit);
            q.build_query_scalar().fetch_all(pool).await?
        }))
    }

    /// A pair by the ids it was imported with.
    pub async fn pair_by_key(&self, key: &PairKey) -> Result<Option<Pair>> {
        let sql = format!("SELECT {PAIR_COLUMNS} WHERE q.ext_id = $1 AND i.ext_id = $2");
        with_pool!(self, |pool| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&key.query_id)
                .bind(&key.product_id)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(pair_from_row).transpose()
        })
    }

    /// Pairs whose ids match none in the store, for telling a user which ids are wrong.
    pub async fn unknown_keys(&self, keys: &[PairKey]) -> Result<Vec<PairKey>> {
        let mut missing = Vec::new();
        for k in keys {
            if self.pair_by_key(k).await?.is_none() {
                missing.push(k.clone());
            }
        }
        Ok(missing)
    }

    /// Up to `n` pairs in import order, for few-shot examples and benchmarks.
    pub async fn first_pairs(&self, n: usize) -> Result<Vec<Pair>> {
        let sql = format!("SELECT {PAIR_COLUMNS} ORDER BY p.id LIMIT $1");
        with_pool!(self, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(n as i64)
                .fetch_all(pool)
                .await?;
            rows.iter().map(pair_from_row).collect()
        })
    }
}
