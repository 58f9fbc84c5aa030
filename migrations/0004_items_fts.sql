-- Full-text index of item titles and brands for lexical augmentation (bm25) and search.
-- Filled incrementally by the store (items only ever get new ids), so imports stay fast.
CREATE VIRTUAL TABLE items_fts USING fts5(title, brand, tokenize = 'unicode61 remove_diacritics 2');
