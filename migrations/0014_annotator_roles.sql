-- Who may write what is PostgreSQL's business (migrations/postgres/0014: the database role is the
-- annotator, and row-level security keeps annotations append-only in one's own name). A SQLite
-- file has no roles: whoever may write the file may write anything. Kept in step, changing
-- nothing.
SELECT 1;
