-- What the review queue filters on, kept on the pair so that a filter over a million pairs walks
-- a small partial index instead of every pair's judgments and annotations. Written by the store
-- whenever a judgment or an annotation is saved; derived data, never edited by hand.
ALTER TABLE pairs ADD COLUMN teacher_label TEXT;
ALTER TABLE pairs ADD COLUMN teacher_p REAL;
ALTER TABLE pairs ADD COLUMN teacher_parse_error INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pairs ADD COLUMN reviewed INTEGER NOT NULL DEFAULT 0;

UPDATE pairs SET
    teacher_label = j.label,
    teacher_p = (SELECT max(value) FROM json_each(j.distribution)),
    teacher_parse_error = j.parse_error IS NOT NULL
FROM judgments j
WHERE j.id = (SELECT id FROM judgments WHERE pair_id = pairs.id ORDER BY rationale IS NOT NULL DESC, id DESC LIMIT 1);

UPDATE pairs SET reviewed = 1 WHERE EXISTS (SELECT 1 FROM annotations a WHERE a.pair_id = pairs.id);

CREATE INDEX pairs_unreviewed ON pairs(id) WHERE reviewed = 0;
CREATE INDEX pairs_disagree ON pairs(id) WHERE teacher_label <> gold_label;
CREATE INDEX pairs_low_confidence ON pairs(id) WHERE teacher_p < 0.5;
CREATE INDEX pairs_parse_error ON pairs(id) WHERE teacher_parse_error = 1;
