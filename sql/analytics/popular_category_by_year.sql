-- Per post year 2018-2022 the top category by number of posts (ties all kept).
WITH counts AS (
  SELECT post_year, category, count(*) AS category_count
  FROM joined
  WHERE post_year BETWEEN 2018 AND 2022 AND category IS NOT NULL
  GROUP BY post_year, category
),
ranked AS (
  SELECT *, rank() OVER (PARTITION BY post_year ORDER BY category_count DESC) AS rk FROM counts
)
SELECT post_year, category, category_count
FROM ranked
WHERE rk = 1
ORDER BY post_year, category
