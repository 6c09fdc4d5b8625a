-- joined (pipeline-spec.md section 5): one row per post present in all three cleaned tables,
-- with its age group (other ages: NULL, in no group).
SELECT
  p.ind,
  p.category,
  p.poster_name,
  p.follower_count,
  g.country,
  CAST(year(g.@q(timestamp)) AS INT) AS post_year,
  u.user_name,
  u.age,
  CAST(year(u.date_joined) AS INT) AS join_year,
  CASE
    WHEN u.age BETWEEN 18 AND 24 THEN '18-24'
    WHEN u.age BETWEEN 25 AND 35 THEN '25-35'
    WHEN u.age BETWEEN 36 AND 50 THEN '36-50'
    WHEN u.age > 50 THEN '+50'
  END AS age_group
FROM pin_clean p
JOIN geo_clean g ON g.ind = p.ind
JOIN user_clean u ON u.ind = p.ind
