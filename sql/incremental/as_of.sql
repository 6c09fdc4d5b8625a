-- The cleaned table as of the interval's end: per key the latest version among the objects
-- whose first offset is below the end offset of their partition. A partition the interval
-- does not list contributes nothing.
SELECT {columns}
FROM (
  SELECT v.*, row_number() OVER (PARTITION BY v.ind ORDER BY v.start_offset DESC, v.line_no DESC, v.elem_no DESC, v.object DESC) AS rn
  FROM {versions} v
  JOIN interval_bounds b ON b.topic = '{topic}' AND b.part = v.part
  WHERE v.start_offset < b.end_offset
) l
WHERE rn = 1
