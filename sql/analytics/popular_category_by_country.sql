-- Per country the top category by number of posts (ties all kept).
WITH counts AS (
  SELECT country, category, count(*) AS category_count
  FROM joined
  WHERE country IS NOT NULL AND category IS NOT NULL
  GROUP BY country, category
),
ranked AS (
  SELECT *, rank() OVER (PARTITION BY country ORDER BY category_count DESC) AS rk FROM counts
)
SELECT country, category, category_count
FROM ranked
WHERE rk = 1
ORDER BY country, category
