-- From user_clean alone: distinct user names per join year 2015-2020.
SELECT CAST(year(date_joined) AS INT) AS post_year, count(DISTINCT user_name) AS number_users_joined
FROM user_clean
WHERE year(date_joined) BETWEEN 2015 AND 2020
GROUP BY year(date_joined)
ORDER BY post_year
