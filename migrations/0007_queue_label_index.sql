-- The review queue's one-label view (`L`): its pages and its count read a range of this index
-- instead of scanning pairs for the label.
CREATE INDEX pairs_by_teacher_label ON pairs(teacher_label, id);
