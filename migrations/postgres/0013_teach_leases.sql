-- In step with ../0013: teach processes' claims on pairs, each with its owner and expiry.
CREATE TABLE teach_leases (
    pair_id     BIGINT NOT NULL REFERENCES pairs(id),
    model       TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    mode        TEXT NOT NULL,
    owner       TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    PRIMARY KEY (pair_id, model, prompt_hash, mode)
);
CREATE INDEX teach_leases_by_owner ON teach_leases(owner);
