-- user_clean (pipeline-spec.md section 4). Macros: see pin_clean.sql.
WITH latest AS (
  SELECT r.*, @key(raw_ind) AS k,
    row_number() OVER (PARTITION BY @dedup_key(@key(raw_ind)) ORDER BY start_offset DESC, line_no DESC, elem_no DESC, src_file DESC) AS rn
  FROM user_records r
  WHERE is_record AND @key(raw_ind) IS NOT NULL
),
parts AS (
  SELECT k AS ind@carry(), @text(raw_first_name) AS first_name, @text(raw_last_name) AS last_name, raw_age, raw_date_joined
  FROM latest
  WHERE rn = 1
)
SELECT
  ind,
  CASE WHEN first_name IS NULL AND last_name IS NULL THEN NULL ELSE concat_ws(' ', first_name, last_name) END AS user_name,
  -- An integer (a JSON number like 30 or 30.0, or such a string); anything else is NULL.
  try_cast(regexp_extract(raw_age, @re('^{WS}*(-?[0-9]+)(\.0+)?{WS}*$'), 1) AS INT) AS age,
  @timestamp(raw_date_joined) AS date_joined@carry()
FROM parts
