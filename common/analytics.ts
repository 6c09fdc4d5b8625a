/**
 * Names and columns of the cleaned tables (spec section 4) and the analytics outputs (spec
 * section 5), in spec order. The one list the cleaning, the warehouses and the report share.
 */

export const CLEANED_TABLES = [
  {
    name: 'pin_clean',
    columns: ['ind', 'unique_id', 'title', 'description', 'follower_count', 'poster_name', 'tag_list', 'is_image_or_video', 'image_src', 'save_location', 'category'],
  },
  { name: 'geo_clean', columns: ['ind', 'country', 'coordinates', 'timestamp'] },
  { name: 'user_clean', columns: ['ind', 'user_name', 'age', 'date_joined'] },
] as const;

export type CleanedTableName = (typeof CLEANED_TABLES)[number]['name'];

export const ANALYTICS_OUTPUTS = [
  { name: 'popular_category_by_country', columns: ['country', 'category', 'category_count'] },
  { name: 'popular_category_by_year', columns: ['post_year', 'category', 'category_count'] },
  { name: 'top_user_by_country', columns: ['country', 'poster_name', 'follower_count'] },
  { name: 'top_country_by_followers', columns: ['country', 'poster_name', 'follower_count'] },
  { name: 'popular_category_by_age_group', columns: ['age_group', 'category', 'category_count'] },
  { name: 'median_followers_by_age_group', columns: ['age_group', 'median_follower_count'] },
  { name: 'users_joined_by_year', columns: ['post_year', 'number_users_joined'] },
  { name: 'median_followers_by_join_year', columns: ['post_year', 'median_follower_count'] },
  { name: 'median_followers_by_age_group_and_join_year', columns: ['age_group', 'post_year', 'median_follower_count'] },
] as const;

export type AnalyticsOutputName = (typeof ANALYTICS_OUTPUTS)[number]['name'];

/** Age groups in their spec order (`+50` is age > 50). */
export const AGE_GROUPS = ['18-24', '25-35', '36-50', '+50'] as const;
export type AgeGroup = (typeof AGE_GROUPS)[number];
