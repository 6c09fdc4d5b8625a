-- The summary of one topic for the interval: its records (read from the interval's objects),
-- the records left out and why, the keys it holds, and of those the keys new as of its end
-- (inserted) and the keys that existed before its start (replaced). Only the interval's keys
-- are looked up among the earlier versions.
WITH recs AS (
  SELECT r.is_record, @key(r.raw_{key}) AS k
  FROM {topic}_records r
  JOIN interval_bounds b ON b.topic = '{topic}' AND b.part = CAST(regexp_extract(r.src_file, @re('\+([0-9]+)\+[0-9]+\.json$'), 1) AS INT)
  WHERE r.start_offset >= b.start_offset AND r.start_offset < b.end_offset
),
interval_keys AS (
  SELECT DISTINCT v.ind
  FROM {versions} v
  JOIN interval_bounds b ON b.topic = '{topic}' AND b.part = v.part
  WHERE v.start_offset >= b.start_offset AND v.start_offset < b.end_offset
),
before_keys AS (
  SELECT DISTINCT v.ind
  FROM {versions} v
  JOIN interval_bounds b ON b.topic = '{topic}' AND b.part = v.part
  WHERE v.start_offset < b.start_offset AND v.ind IN (SELECT ind FROM interval_keys)
)
SELECT
  '{topic}' AS topic,
  (SELECT count(*) FROM recs) AS records_read,
  (SELECT count(CASE WHEN NOT is_record THEN 1 END) FROM recs) AS not_an_object,
  (SELECT count(CASE WHEN is_record AND k IS NULL THEN 1 END) FROM recs) AS no_usable_key,
  (SELECT count(DISTINCT CASE WHEN is_record THEN k END) FROM recs) AS kept,
  (SELECT count(*) FROM interval_keys i LEFT JOIN before_keys p ON p.ind = i.ind WHERE p.ind IS NULL) AS inserted,
  (SELECT count(*) FROM interval_keys i JOIN before_keys p ON p.ind = i.ind) AS replaced
