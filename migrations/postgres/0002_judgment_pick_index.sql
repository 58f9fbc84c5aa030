-- In step with ../0002: the index that picks each pair's judgment.
CREATE INDEX judgments_pick ON judgments(pair_id, (rationale IS NOT NULL), id);
