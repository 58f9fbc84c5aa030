-- In step with ../0011: `annotations.before` holds JSON; quote any plain text written before.
UPDATE annotations SET before = to_json(before)::text WHERE before IS NOT NULL;
