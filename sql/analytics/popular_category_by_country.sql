-- Per country the top category by number of posts (ties all kept).
@popular_category(group => country, where => country IS NOT NULL, order_by => country)
