-- user_clean (pipeline-spec.md section 4). Macros and templates: see pin_clean.sql.
WITH parts AS (
  SELECT ind@carry(), @text(raw_first_name) AS first_name, @text(raw_last_name) AS last_name, raw_age, raw_date_joined
  FROM (@latest_per_key(records => user_records, key => raw_ind)) latest
)
SELECT
  ind,
  CASE WHEN first_name IS NULL AND last_name IS NULL THEN NULL ELSE concat_ws(' ', first_name, last_name) END AS user_name,
  -- An integer (a JSON number like 30 or 30.0, or such a string); anything else is NULL.
  @int(raw_age) AS age,
  @timestamp(raw_date_joined) AS date_joined@carry()
FROM parts
