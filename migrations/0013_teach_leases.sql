-- Teach processes sharing one database claim pairs before judging them: a lease names the
-- process (host:pid) and when the claim lapses, so a dead process's pairs are taken over once
-- its leases expire. Times are UTC ISO-8601 text like every other time here, so they compare as
-- text. Used on PostgreSQL (teach on several machines); kept in step here.
CREATE TABLE teach_leases (
    pair_id     INTEGER NOT NULL REFERENCES pairs(id),
    model       TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    mode        TEXT NOT NULL,
    owner       TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    PRIMARY KEY (pair_id, model, prompt_hash, mode)
);
CREATE INDEX teach_leases_by_owner ON teach_leases(owner);
