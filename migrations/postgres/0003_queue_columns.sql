-- In step with ../0003: the review queue's columns kept on the pair.
ALTER TABLE pairs ADD COLUMN teacher_label TEXT;
ALTER TABLE pairs ADD COLUMN teacher_p DOUBLE PRECISION;
ALTER TABLE pairs ADD COLUMN teacher_parse_error BIGINT NOT NULL DEFAULT 0;
ALTER TABLE pairs ADD COLUMN reviewed BIGINT NOT NULL DEFAULT 0;

UPDATE pairs SET
    teacher_label = j.label,
    teacher_p = (SELECT max(value::double precision) FROM json_array_elements_text(j.distribution::json) AS value),
    teacher_parse_error = (j.parse_error IS NOT NULL)::int
FROM judgments j
WHERE j.id = (SELECT id FROM judgments WHERE pair_id = pairs.id ORDER BY rationale IS NOT NULL DESC, id DESC LIMIT 1);

UPDATE pairs SET reviewed = 1 WHERE EXISTS (SELECT 1 FROM annotations a WHERE a.pair_id = pairs.id);

CREATE INDEX pairs_unreviewed ON pairs(id) WHERE reviewed = 0;
CREATE INDEX pairs_disagree ON pairs(id) WHERE teacher_label <> gold_label;
CREATE INDEX pairs_low_confidence ON pairs(id) WHERE teacher_p < 0.5;
CREATE INDEX pairs_parse_error ON pairs(id) WHERE teacher_parse_error = 1;
