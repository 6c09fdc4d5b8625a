-- geo_clean (pipeline-spec.md section 4). Macros: see pin_clean.sql.
WITH latest AS (
  SELECT r.*, @key(raw_ind) AS k,
    row_number() OVER (PARTITION BY @dedup_key(@key(raw_ind)) ORDER BY start_offset DESC, line_no DESC, elem_no DESC, src_file DESC) AS rn
  FROM geo_records r
  WHERE is_record AND @key(raw_ind) IS NOT NULL
),
parsed AS (
  SELECT
    k AS ind@carry(),
    @text(raw_country) AS country,
    @double(raw_latitude) AS latitude,
    @double(raw_longitude) AS longitude,
    @timestamp(raw_timestamp) AS ts
  FROM latest
  WHERE rn = 1
)
SELECT
  ind,
  country,
  CASE WHEN latitude IS NULL OR longitude IS NULL THEN NULL ELSE @array(latitude, longitude) END AS coordinates,
  ts AS @q(timestamp)@carry()
FROM parsed
