-- The current state (Spark, Delta): every key the batch touched gets its latest version overall
-- (highest start_offset, line_no, elem_no, then object name: the order of the full recompute),
-- updated in place or inserted. Keys the batch did not touch are not read. DuckDB deletes the
-- touched keys and inserts them again instead (current_insert.sql): an update in place makes
-- its checkpoint rewrite every row group the update touches, a delete and an append do not.
MERGE INTO {current} c
USING (
  SELECT {columns}
  FROM (
    SELECT v.*, row_number() OVER (PARTITION BY v.ind ORDER BY v.start_offset DESC, v.line_no DESC, v.elem_no DESC, v.object DESC) AS rn
    FROM {versions} v
    WHERE v.ind IN (SELECT ind FROM {topic}_batch)
  ) l
  WHERE rn = 1
) s
ON c.ind = s.ind
WHEN MATCHED THEN UPDATE SET {set}
WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({values})
