-- In step with ../0012: the review queue's "to review" filter.
CREATE INDEX pairs_to_review ON pairs(id) WHERE reviewed = 0 AND judgment_id IS NOT NULL;
