//! Data for benchmarks, not for users: judgments made up in bulk so that a generated
//! million-pair database has something to export. Kept apart from the store's real records.

use anyhow::Result;

use super::Store;

impl Store {
    /// One synthetic score-mode judgment per pair, so that an
    /// export of a generated million-pair database has teacher distributions to write.
    pub async fn add_synthetic_judgments(&self) -> Result<u64> {
        const JUDGE: &str = "INSERT INTO judgments (pair_id, model, prompt_hash, mode, label, distribution, dist_source, raw_output) \
             SELECT id, 'synthetic', 'bench', 'score', \
               CASE id % 4 WHEN 0 THEN 'E' WHEN 1 THEN 'S' WHEN 2 THEN 'C' ELSE 'I' END, \
               CASE id % 4 WHEN 0 THEN '[0.7,0.2,0.05,0.05]' WHEN 1 THEN '[0.2,0.6,0.1,0.1]' \
                 WHEN 2 THEN '[0.1,0.2,0.6,0.1]' ELSE '[0.05,0.05,0.1,0.8]' END, 'logprobs', '' FROM pairs p \
             WHERE NOT EXISTS (SELECT 1 FROM judgments j WHERE j.pair_id = p.id)";
        // A join, not a subquery per pair: PostgreSQL then hashes the judgments once.
        const PICK: &str = "UPDATE pairs SET judgment_id = j.id, teacher_label = j.label, \
             teacher_p = CASE pairs.id % 4 WHEN 0 THEN 0.7 WHEN 1 THEN 0.6 WHEN 2 THEN 0.6 ELSE 0.8 END \
             FROM judgments j WHERE j.pair_id = pairs.id AND j.model = 'synthetic' \
             AND pairs.teacher_label IS NULL";
        super::with_pool!(self, |pool| {
            let done = sqlx::query(JUDGE).execute(pool).await?;
            sqlx::query(PICK).execute(pool).await?;
            Ok(done.rows_affected())
        })
    }
}
