-- Per country the poster(s) with the highest follower count; one row per distinct combination.
-- The highest count per country is found first, so only the rows that reach it are made distinct.
WITH posters AS (
  SELECT country, poster_name, follower_count
  FROM joined
  WHERE country IS NOT NULL AND poster_name IS NOT NULL AND follower_count IS NOT NULL
),
top AS (
  SELECT country AS top_country, max(follower_count) AS top_count FROM posters GROUP BY country
)
SELECT DISTINCT country, poster_name, follower_count
FROM posters
JOIN top ON top_country = country AND top_count = follower_count
ORDER BY country, poster_name
