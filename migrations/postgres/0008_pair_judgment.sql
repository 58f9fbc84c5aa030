-- In step with ../0008: the judgment that stands for each pair, kept on the pair.
ALTER TABLE pairs ADD COLUMN judgment_id BIGINT REFERENCES judgments(id);

UPDATE pairs SET judgment_id = (
    SELECT id FROM judgments WHERE pair_id = pairs.id
    ORDER BY rationale IS NOT NULL DESC, id DESC LIMIT 1
);
