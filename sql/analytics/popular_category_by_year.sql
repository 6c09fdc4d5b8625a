-- Per post year 2018-2022 the top category by number of posts (ties all kept).
@popular_category(group => post_year, where => post_year BETWEEN 2018 AND 2022, order_by => post_year)
