-- A rerun replaces its merge: the versions of every object merged now and of every object of
-- the interval (first offset in [start, end) of its partition) are removed before the insert.
MERGE INTO {versions} v
USING (
  SELECT part, start_offset FROM batch_objects WHERE topic = '{topic}'
  UNION
  SELECT x.part, x.start_offset
  FROM {versions} x
  JOIN interval_bounds b ON b.topic = '{topic}' AND b.part = x.part
  WHERE x.start_offset >= b.start_offset AND x.start_offset < b.end_offset
) o
ON v.part = o.part AND v.start_offset = o.start_offset
WHEN MATCHED THEN DELETE
