-- In step with ../0014. On a team's database the annotator is the database role
-- (`current_user`). The role that ran the migrations owns the tables: it alone may change the
-- schema, delete or rewrite (an owner is not bound by row-level security). Every other role that
-- may connect reads everything and appends annotations in its own name only: it can neither
-- write one in another's name, nor undo another's change, nor update or delete any. Who may
-- connect is the server's business (`GRANT CONNECT ON DATABASE ...`).
ALTER TABLE annotations ENABLE ROW LEVEL SECURITY;
CREATE POLICY annotations_read ON annotations FOR SELECT USING (true);
CREATE POLICY annotations_own ON annotations FOR INSERT WITH CHECK (
    annotator = current_user
    AND (annotations.undoes IS NULL OR EXISTS (
        SELECT 1 FROM annotations mine
        WHERE mine.id = annotations.undoes AND mine.annotator = current_user))
);
DO $$
BEGIN
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO PUBLIC', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO PUBLIC',
                   current_schema());
END
$$;
GRANT INSERT ON annotations TO PUBLIC;
-- What an annotation changes besides its own row: the pair's `reviewed` flag (derived from the
-- annotations, so the policy above bounds it) and the search index the review app fills.
GRANT UPDATE (reviewed) ON pairs TO PUBLIC;
GRANT INSERT ON items_search TO PUBLIC;
