-- In step with ../0004 (SQLite's FTS5 table items_fts): each item's title and brand as a
-- tsvector, weighted as the bm25 ranking weights them (title A, brand B), searched through a GIN
-- index. Like items_fts it is filled by the store when a search first needs it (items only ever
-- get new ids), not on import, so imports stay fast.
CREATE TABLE items_search (
    item_id BIGINT PRIMARY KEY REFERENCES items(id),
    search  tsvector NOT NULL
);
CREATE INDEX items_search_terms ON items_search USING GIN (search);
