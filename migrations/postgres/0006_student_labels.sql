-- In step with ../0006: the label each student score stands for.
ALTER TABLE student_scores ADD COLUMN label TEXT;
