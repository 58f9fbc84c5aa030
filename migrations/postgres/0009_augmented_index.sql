-- In step with ../0009: the pairs `workbench augment` added.
CREATE INDEX pairs_augmented ON pairs(origin) WHERE origin <> 'import';
