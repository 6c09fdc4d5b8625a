-- Exact, interpolated median follower count per age group, over the posts of joined.
SELECT age_group, percentile_cont(0.5) WITHIN GROUP (ORDER BY follower_count) AS median_follower_count
FROM joined
WHERE age_group IS NOT NULL AND follower_count IS NOT NULL
GROUP BY age_group
ORDER BY @age_group_rank(age_group)
