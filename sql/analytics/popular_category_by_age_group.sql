-- Per age group the top category by number of posts (ties all kept).
@popular_category(group => age_group, where => age_group IS NOT NULL, order_by => @age_group_rank(age_group))
