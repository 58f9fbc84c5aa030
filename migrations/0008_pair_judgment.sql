-- The judgment that stands for each pair (the newest with a rationale, else the newest), kept on
-- the pair like the queue columns of 0003 and written with them whenever a judgment is saved.
-- Exports, audits and the student read it by id instead of running the pick for every pair.
ALTER TABLE pairs ADD COLUMN judgment_id INTEGER REFERENCES judgments(id);

UPDATE pairs SET judgment_id = (
    SELECT id FROM judgments WHERE pair_id = pairs.id
    ORDER BY rationale IS NOT NULL DESC, id DESC LIMIT 1
);
