-- In step with ../0005: the review queue's orders, one index per sort key.
CREATE INDEX pairs_by_confidence ON pairs(COALESCE(teacher_p, 2.0), id);
CREATE INDEX pairs_by_disagreement
    ON pairs(COALESCE(CASE WHEN teacher_label <> gold_label THEN -teacher_p END, 1.0), id);
CREATE INDEX pairs_by_query ON pairs(query_id, id);
