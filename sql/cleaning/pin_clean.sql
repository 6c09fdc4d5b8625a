-- pin_clean (pipeline-spec.md section 4). One SQL text for DuckDB, Spark and Databricks:
-- `@name(...)` are dialect macros and templates (sql/templates/) expanded by sql/render.ts;
-- `{WS}` in @re() is the whitespace class of the text rule. Input: pin_records (raw_<column>
-- strings per record).
WITH texts AS (
  SELECT
    ind@carry(),
    @text(raw_unique_id) AS unique_id,
    @text(raw_title) AS title,
    @text(raw_description) AS description,
    @text(raw_poster_name) AS poster_name,
    @text(raw_tag_list) AS tag_list,
    @text(raw_is_image_or_video) AS is_image_or_video,
    @text(raw_image_src) AS image_src,
    @text(raw_save_location) AS save_location,
    @text(raw_category) AS category,
    -- follower_count parts: integer digits, fraction digits, suffix (no match: all '').
    regexp_extract(raw_follower_count, @re('^{WS}*([0-9]+)(\.([0-9]+))?([kKmM]?){WS}*$'), 1) AS fc_int,
    regexp_extract(raw_follower_count, @re('^{WS}*([0-9]+)(\.([0-9]+))?([kKmM]?){WS}*$'), 3) AS fc_frac,
    regexp_extract(raw_follower_count, @re('^{WS}*([0-9]+)(\.([0-9]+))?([kKmM]?){WS}*$'), 4) AS fc_suffix
  FROM (@latest_per_key(records => pin_records, key => raw_index)) latest
),
scaled AS (
  SELECT *,
    CASE WHEN fc_suffix IN ('k', 'K') THEN 3 WHEN fc_suffix IN ('m', 'M') THEN 6 ELSE 0 END AS fc_shift
  FROM texts
)
SELECT
  ind,
  unique_id,
  CASE WHEN title = 'No Title Data Available' THEN NULL ELSE title END AS title,
  CASE WHEN description IN ('No description available Story format', 'No description available', 'Untitled') THEN NULL ELSE description END AS description,
  -- Exact decimal scaling done on digits: int digits + the first <shift> fraction digits
  -- (zero-padded), plus one when the next fraction digit is 5 or more (half away from zero).
  -- Up to 18 digits BIGINT arithmetic cannot overflow; longer ones (leading zeros, or out of
  -- range) go through DECIMAL, which is exact but ~100x slower.
  CASE
    WHEN fc_int = '' THEN NULL
    WHEN length(fc_int) + fc_shift <= 18 THEN
      try_cast(concat(fc_int, rpad(fc_frac, fc_shift, '0')) AS BIGINT)
        + CASE WHEN substr(concat(fc_frac, '0000000'), fc_shift + 1, 1) >= '5' THEN 1 ELSE 0 END
    ELSE try_cast(
      try_cast(concat(fc_int, rpad(fc_frac, fc_shift, '0')) AS DECIMAL(38, 0))
        + CASE WHEN substr(concat(fc_frac, '0000000'), fc_shift + 1, 1) >= '5' THEN 1 ELSE 0 END
      AS BIGINT)
  END AS follower_count,
  CASE WHEN poster_name = 'User Info Error' THEN NULL ELSE poster_name END AS poster_name,
  CASE WHEN tag_list = 'N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e' THEN NULL ELSE tag_list END AS tag_list,
  is_image_or_video,
  CASE WHEN image_src = 'Image src error.' THEN NULL ELSE image_src END AS image_src,
  -- 'Local save in ' is 14 characters; what is left obeys the text rule again.
  CASE WHEN save_location LIKE 'Local save in %' THEN @text(substr(save_location, 15)) ELSE save_location END AS save_location,
  category@carry()
FROM scaled
