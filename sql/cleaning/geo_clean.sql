-- geo_clean (pipeline-spec.md section 4). Macros and templates: see pin_clean.sql.
WITH parsed AS (
  SELECT
    ind@carry(),
    @text(raw_country) AS country,
    @double(raw_latitude) AS latitude,
    @double(raw_longitude) AS longitude,
    @timestamp(raw_timestamp) AS ts
  FROM (@latest_per_key(records => geo_records, key => raw_ind)) latest
)
SELECT
  ind,
  country,
  CASE WHEN latitude IS NULL OR longitude IS NULL THEN NULL ELSE @array(latitude, longitude) END AS coordinates,
  ts AS @q(timestamp)@carry()
FROM parsed
