-- Per country the poster(s) with the highest follower count; one row per distinct combination.
WITH posters AS (
  SELECT DISTINCT country, poster_name, follower_count
  FROM joined
  WHERE country IS NOT NULL AND poster_name IS NOT NULL AND follower_count IS NOT NULL
),
ranked AS (
  SELECT *, rank() OVER (PARTITION BY country ORDER BY follower_count DESC) AS rk FROM posters
)
SELECT country, poster_name, follower_count
FROM ranked
WHERE rk = 1
ORDER BY country, poster_name
