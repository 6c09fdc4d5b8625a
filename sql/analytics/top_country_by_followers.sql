-- The row(s) of top_user_by_country with the highest follower count overall.
WITH ranked AS (
  SELECT *, rank() OVER (ORDER BY follower_count DESC) AS rk FROM top_user_by_country
)
SELECT country, poster_name, follower_count
FROM ranked
WHERE rk = 1
ORDER BY country, poster_name
