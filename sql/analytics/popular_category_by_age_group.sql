-- Per age group the top category by number of posts (ties all kept).
WITH counts AS (
  SELECT age_group, category, count(*) AS category_count
  FROM joined
  WHERE age_group IS NOT NULL AND category IS NOT NULL
  GROUP BY age_group, category
),
ranked AS (
  SELECT *, rank() OVER (PARTITION BY age_group ORDER BY category_count DESC) AS rk FROM counts
)
SELECT age_group, category, category_count
FROM ranked
WHERE rk = 1
ORDER BY @age_group_rank(age_group), category
