-- Calibrations of a teacher (model and prompt) fitted on human labels by `workbench teacher
-- calibrate`: vector scaling of the label log-probabilities. The newest row of a teacher applies;
-- judgments keep their raw distribution, the calibrated one is computed beside it on read.
CREATE TABLE calibrations (
    id              INTEGER PRIMARY KEY,
    model           TEXT NOT NULL,
    prompt_hash     TEXT NOT NULL,
    mode            TEXT NOT NULL,
    slope           REAL NOT NULL,
    bias            TEXT NOT NULL,          -- JSON list, one bias per label in the scale's order
    samples         INTEGER NOT NULL,       -- human-labelled train pairs it was fitted on
    split           TEXT NOT NULL,          -- the split spec and seed of those pairs
    nll_before      REAL NOT NULL,
    nll_after       REAL NOT NULL,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX calibrations_teacher ON calibrations(model, prompt_hash, id);
