-- In step with ../0007: the review queue's one-label view.
CREATE INDEX pairs_by_teacher_label ON pairs(teacher_label, id);
