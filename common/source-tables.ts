/**
 * The three source tables of pipeline-spec.md section 1, as data: column names in
 * `SELECT *` order with their SQL types. Pure (imported by workflows, activities, scripts).
 */

export type ColumnType = 'int' | 'double' | 'text' | 'datetime';

export interface SourceTable {
  name: 'pinterest_data' | 'geolocation_data' | 'user_data';
  /** Short name used in topics (`<prefix>.pin`) and stream names. */
  topic: 'pin' | 'geo' | 'user';
  key: 'index' | 'ind';
  columns: ReadonlyArray<{ name: string; type: ColumnType }>;
}

export const SOURCE_TABLES: readonly SourceTable[] = [
  {
    name: 'pinterest_data',
    topic: 'pin',
    key: 'index',
    columns: [
      { name: 'index', type: 'int' },
      { name: 'unique_id', type: 'text' },
      { name: 'title', type: 'text' },
      { name: 'description', type: 'text' },
      { name: 'poster_name', type: 'text' },
      { name: 'follower_count', type: 'text' },
      { name: 'tag_list', type: 'text' },
      { name: 'is_image_or_video', type: 'text' },
      { name: 'image_src', type: 'text' },
      { name: 'downloaded', type: 'int' },
      { name: 'save_location', type: 'text' },
      { name: 'category', type: 'text' },
    ],
  },
  {
    name: 'geolocation_data',
    topic: 'geo',
    key: 'ind',
    columns: [
      { name: 'ind', type: 'int' },
      { name: 'timestamp', type: 'datetime' },
      { name: 'latitude', type: 'double' },
      { name: 'longitude', type: 'double' },
      { name: 'country', type: 'text' },
    ],
  },
  {
    name: 'user_data',
    topic: 'user',
    key: 'ind',
    columns: [
      { name: 'ind', type: 'int' },
      { name: 'first_name', type: 'text' },
      { name: 'last_name', type: 'text' },
      { name: 'age', type: 'int' },
      { name: 'date_joined', type: 'datetime' },
    ],
  },
];

export const topicName = (prefix: string, t: SourceTable['topic']) => `${prefix}.${t}`;
