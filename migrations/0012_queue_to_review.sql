-- The review queue's "to review" filter: judged by the teacher, not reviewed yet. The condition
-- is the one store/queue.rs writes, word for word, so SQLite walks this index.
CREATE INDEX pairs_to_review ON pairs(id) WHERE reviewed = 0 AND judgment_id IS NOT NULL;
