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

/** Columns in `SELECT *` order, from `name: type` pairs (object keys keep their order). */
const columns = (spec: Record<string, ColumnType>): SourceTable['columns'] => Object.entries(spec).map(([name, type]) => ({ name, type }));

export const SOURCE_TABLES: readonly SourceTable[] = [
  {
    name: 'pinterest_data',
    topic: 'pin',
    key: 'index',
    columns: columns({
      index: 'int', unique_id: 'text', title: 'text', description: 'text', poster_name: 'text', follower_count: 'text',
      tag_list: 'text', is_image_or_video: 'text', image_src: 'text', downloaded: 'int', save_location: 'text', category: 'text',
    }),
  },
  { name: 'geolocation_data', topic: 'geo', key: 'ind', columns: columns({ ind: 'int', timestamp: 'datetime', latitude: 'double', longitude: 'double', country: 'text' }) },
  { name: 'user_data', topic: 'user', key: 'ind', columns: columns({ ind: 'int', first_name: 'text', last_name: 'text', age: 'int', date_joined: 'datetime' }) },
];

export const topicName = (prefix: string, t: SourceTable['topic']) => `${prefix}.${t}`;
