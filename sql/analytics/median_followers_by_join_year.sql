-- Median follower count per join year 2015-2020, over the posts of joined.
SELECT join_year AS post_year, percentile_cont(0.5) WITHIN GROUP (ORDER BY follower_count) AS median_follower_count
FROM joined
WHERE join_year BETWEEN 2015 AND 2020 AND follower_count IS NOT NULL
GROUP BY join_year
ORDER BY post_year
