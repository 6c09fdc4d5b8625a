-- Per group the top category by number of posts in joined (pipeline-spec.md section 5): rank 1
-- by count, ties all kept; NULL categories are not counted. Parameters: {group}, the grouping
-- column of joined; {where}, the rows of joined the group keeps (none with a NULL group);
-- {order_by}, the group's sort key. Rows sorted by group, then category.
WITH counts AS (
  SELECT {group}, category, count(*) AS category_count
  FROM joined
  WHERE {where} AND category IS NOT NULL
  GROUP BY {group}, category
),
ranked AS (
  SELECT *, rank() OVER (PARTITION BY {group} ORDER BY category_count DESC) AS rk FROM counts
)
SELECT {group}, category, category_count
FROM ranked
WHERE rk = 1
ORDER BY {order_by}, category
