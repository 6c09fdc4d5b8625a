-- Median follower count per age group and join year 2015-2020, over the posts of joined.
SELECT age_group, join_year AS post_year, percentile_cont(0.5) WITHIN GROUP (ORDER BY follower_count) AS median_follower_count
FROM joined
WHERE age_group IS NOT NULL AND join_year BETWEEN 2015 AND 2020 AND follower_count IS NOT NULL
GROUP BY age_group, join_year
ORDER BY @age_group_rank(age_group), post_year
