-- DuckDB: the rows of the current state for the keys the batch touched (deleted just before),
-- each key's latest version overall, in the order of current_merge.sql. The choice reads only the
-- versions' key and position columns; the chosen rows are then fetched by row id, so the wide
-- columns of the other versions are never read.
INSERT INTO {current} ({columns})
SELECT {columns}
FROM {versions}
WHERE rowid IN (
  SELECT rid
  FROM (
    SELECT v.rowid AS rid, row_number() OVER (PARTITION BY v.ind ORDER BY v.start_offset DESC, v.line_no DESC, v.elem_no DESC, v.object DESC) AS rn
    FROM {versions} v
    WHERE v.ind IN (SELECT ind FROM {topic}_batch)
  ) l
  WHERE rn = 1
)
