-- `annotations.before` is declared JSON; it was written as plain text. Every row so far came from
-- the one writer (store/annotations.rs), so every non-null value is plain text: quote them all.
-- New rows are written as JSON.
UPDATE annotations SET before = json_quote(before) WHERE before IS NOT NULL;
