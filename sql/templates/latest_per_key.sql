-- One row per key, the latest record wins (pipeline-spec.md section 4, rule 1 of each table).
-- Parameters: {records}, a records relation (recordsSql in sql/render.ts); {key}, its raw key
-- column. Rows: the records' columns plus `ind`, the usable key (@key); records that are not
-- objects or have no usable key are left out. Latest: highest offset (object start, then
-- line), then the later array element. Stream mode (@dedup_key) collapses nothing: every
-- record is its own row.
SELECT *
FROM (
  SELECT *, row_number() OVER (PARTITION BY @dedup_key(ind) ORDER BY start_offset DESC, line_no DESC, elem_no DESC, src_file DESC) AS rn
  FROM (SELECT r.*, @key({key}) AS ind FROM {records} r WHERE is_record) keyed
  WHERE ind IS NOT NULL
) numbered
WHERE rn = 1
