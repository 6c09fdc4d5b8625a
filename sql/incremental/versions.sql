-- The versions of one cleaned table that a batch of landed objects brings: per key and per
-- object the latest record (pipeline-spec.md section 4, rule 1, within the object), cleaned,
-- with its position. {cleaned} is the table's cleaning SELECT in versions mode (one row per
-- key and object, carrying src_file, start_offset, line_no, elem_no); {columns} its columns.
SELECT {columns},
  CAST(regexp_extract(src_file, @re('\+([0-9]+)\+[0-9]+\.json$'), 1) AS INT) AS part,
  start_offset,
  CAST(line_no AS BIGINT) AS line_no,
  CAST(elem_no AS BIGINT) AS elem_no,
  regexp_extract(src_file, @re('partition=[0-9]+/[^/]+$'), 0) AS object
FROM ({cleaned}) c
