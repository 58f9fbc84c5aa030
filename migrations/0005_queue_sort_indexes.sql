-- The review queue's orders (`s`): one index per sort key, the key written exactly as
-- store/queue.rs writes it, so a page in any order reads its rows off an index instead of
-- sorting a million pairs. Unjudged pairs share one key and append at the end of each index.
CREATE INDEX pairs_by_confidence ON pairs(COALESCE(teacher_p, 2.0), id);
CREATE INDEX pairs_by_disagreement
    ON pairs(COALESCE(CASE WHEN teacher_label <> gold_label THEN -teacher_p END, 1.0), id);
CREATE INDEX pairs_by_query ON pairs(CAST(query_id AS REAL), id);
