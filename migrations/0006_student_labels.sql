-- The label each student score stands for (LabelScale::student_label), kept beside the score
-- so the review queue can filter teacher ≠ student without reading every distribution.
-- Written when scores are saved; scores saved before this migration get theirs on the next
-- `workbench student score` or `student import`.
ALTER TABLE student_scores ADD COLUMN label TEXT;
