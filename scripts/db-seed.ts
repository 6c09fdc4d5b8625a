/**
 * npm run db:seed -- [--rows N] [--seed S] [--replace]
 *
 * Deterministic synthetic rows with the real data's shape (pipeline-spec.md section 1): the
 * same value mix and placeholders, 13 categories, real country names, timestamps 2017-10 to
 * 2022-10, joins 2015-10 to 2017-10, ages 20-60. Row `k` depends only on (seed, k), so a
 * larger --rows extends a smaller one. Default 11,154 rows like the original.
 */
import type { Pool } from 'mysql2/promise';
import { applySchema, createMysqlPool, ensureDatabase, insertRows, tableCounts } from '../adapters/mysql';
import type { Config } from '../config';
import { mix, Rng } from '../common/prng';
import { SOURCE_TABLES } from '../common/source-tables';
import { LoadError } from './db-load';
import { defineCommand, parseCommandLine, UsageError } from '../cli/args';
import { runCli } from '../cli/command';

export const CATEGORIES = [
  'art', 'beauty', 'christmas', 'diy-and-crafts', 'education', 'event-planning', 'finance',
  'home-decor', 'mens-fashion', 'quotes', 'tattoos', 'travel', 'vehicles',
] as const;

const COUNTRIES = [
  'Afghanistan', 'Albania', 'Algeria', 'American Samoa', 'Andorra', 'Angola', 'Antarctica (the territory South of 60 deg S)',
  'Argentina', 'Armenia', 'Aruba', 'Australia', 'Austria', 'Azerbaijan', 'Bahamas', 'Bangladesh', 'Belgium', 'Bermuda',
  'Bolivia', 'Brazil', 'Bulgaria', 'Cambodia', 'Cameroon', 'Canada', 'Chile', 'China', 'Colombia', "Cote d'Ivoire",
  'Croatia', 'Cuba', 'Czech Republic', 'Denmark', 'Egypt', 'Estonia', 'Ethiopia', 'Fiji', 'Finland', 'France', 'Germany',
  'Ghana', 'Greece', 'Greenland', 'Guatemala', 'Hungary', 'Iceland', 'India', 'Indonesia', 'Ireland', 'Israel', 'Italy',
  'Jamaica', 'Japan', 'Kenya', 'Latvia', 'Lithuania', 'Luxembourg', 'Madagascar', 'Malaysia', 'Maldives', 'Mexico',
  'Mongolia', 'Morocco', 'Nepal', 'Netherlands', 'New Zealand', 'Nigeria', 'Norway', 'Pakistan', 'Peru', 'Philippines',
  'Poland', 'Portugal', 'Romania', 'Saint Barthelemy', 'Senegal', 'Singapore', 'Slovenia', 'South Africa', 'Spain',
  'Sri Lanka', 'Sweden', 'Switzerland', 'Thailand', 'Tunisia', 'Turkey', 'Uganda', 'Ukraine', 'United Kingdom',
  'United States of America', 'Uruguay', 'Vietnam', 'Zambia', 'Zimbabwe',
];
const FIRST = ['Adam', 'Holly', 'Christopher', 'Alexandria', 'David', 'Thomas', 'Rachel', 'Michael', 'Jennifer', 'Kristen', 'Andrew', 'Dylan', 'Emily', 'Joshua', 'Samantha', 'Brandon', 'Laura', 'Nicole', 'Tyler', 'Megan', 'José', 'Zoë'];
const LAST = ['Acosta', 'Baker', 'Alvarado', 'Andrade', 'Allen', 'Anderson', 'Bailey', 'Barnes', 'Bell', 'Brooks', 'Campbell', 'Carter', 'Clark', 'Cole', 'Cook', 'Davis', 'Evans', 'Fisher', 'Garcia', 'Müller', 'Ñúñez'];
const POSTERS = ['YourTango', 'Bored Panda', 'Walmart', 'Tastemade', 'The Social Easel Online Paint Studio', 'iHeartDogs.com', 'Etsy', 'Architectural Digest', 'Refinery29', 'BuzzFeed', 'Better Homes and Gardens', 'HuffPost'];
const WORDS = ['Ideas', 'Art', 'Easy', 'DIY', 'Beautiful', 'Modern', 'Simple', 'Vintage', 'Tips', 'Inspiration', 'Design', 'Best', 'Quotes', 'Style', 'Home', 'Painting', 'Christmas', 'Travel', 'Tattoo', 'Money'];

/** Timestamps in the spec's windows, as `YYYY-MM-DD HH:MM:SS`. */
const EVENT_FROM = Date.UTC(2017, 9, 1);
const EVENT_TO = Date.UTC(2022, 9, 31, 23, 59, 59);
const JOIN_FROM = Date.UTC(2015, 9, 1);
const JOIN_TO = Date.UTC(2017, 9, 31, 23, 59, 59);

const fmt = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');

function followerCount(r: Rng): string {
  const p = r.float();
  if (p < 0.74) return `${r.int(1, 999)}k`;
  if (p < 0.92) return String(r.int(0, 999));
  if (p < 0.9925) return `${r.int(1, 9)}M`;
  return 'User Info Error';
}

/** The three rows of post `key`, values in column order. */
export function syntheticPost(seed: number, key: number): { pin: unknown[]; geo: unknown[]; user: unknown[] } {
  const r = new Rng(mix(seed, key));
  const category = r.pick(CATEGORIES);
  const kind = r.float();
  const isStory = kind < 0.07;
  const media = isStory ? 'multi-video(story page format)' : kind < 0.1 ? 'video' : 'image';
  const follower = followerCount(r);
  const userError = follower === 'User Info Error';
  const imageError = r.chance(0.024);
  const hex = () => r.uint32().toString(16).padStart(8, '0');
  const uuid = `${hex()}-${hex().slice(0, 4)}-4${hex().slice(0, 3)}-a${hex().slice(0, 3)}-${hex()}${hex().slice(0, 4)}`;
  const title = r.chance(0.007) ? 'No Title Data Available' : Array.from({ length: r.int(2, 9) }, () => r.pick(WORDS)).join(' ');
  const description = isStory ? 'No description available Story format' : r.chance(0.01) ? 'Untitled' : `${Array.from({ length: r.int(5, 25) }, () => r.pick(WORDS).toLowerCase()).join(' ')}.`;
  const tags = r.chance(0.01) ? 'N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e' : Array.from({ length: r.int(3, 9) }, () => `${r.pick(WORDS)} ${r.pick(WORDS)}`).join(',');
  const src = imageError ? 'Image src error.' : `https://i.pinimg.com/originals/${hex().slice(0, 2)}/${hex().slice(0, 2)}/${hex().slice(0, 2)}/${hex()}${hex()}${hex()}${hex()}.jpg`;
  const pin = [key, uuid, title, description, userError ? 'User Info Error' : r.pick(POSTERS), follower, tags, media, src, imageError ? 0 : 1, `Local save in /data/${category}`, category];
  const lat = Math.round((r.float() * 180 - 90) * 1e4) / 1e4;
  const lon = Math.round((r.float() * 360 - 180) * 1e4) / 1e4;
  const geo = [key, fmt(EVENT_FROM + Math.floor(r.float() * (EVENT_TO - EVENT_FROM) / 1000) * 1000), lat, lon, r.pick(COUNTRIES)];
  const user = [key, r.pick(FIRST), r.pick(LAST), r.int(20, 60), fmt(JOIN_FROM + Math.floor(r.float() * (JOIN_TO - JOIN_FROM) / 1000) * 1000)];
  return { pin, geo, user };
}

const BATCH = 2_000;

export async function seed(config: Config, opts: { rows: number; seed: number; replace: boolean; log?: (s: string) => void }): Promise<number> {
  const log = opts.log ?? (() => {});
  await ensureDatabase(config);
  const pool: Pool = createMysqlPool(config, 3);
  try {
    await applySchema(pool);
    const counts = await tableCounts(pool);
    const full = Object.entries(counts).filter(([, n]) => n > 0);
    if (full.length && !opts.replace) throw new LoadError(`refusing to seed non-empty table(s) ${full.map(([t, n]) => `${t} (${n} rows)`).join(', ')}; pass --replace to replace them`);
    for (const t of SOURCE_TABLES) await pool.query(`TRUNCATE TABLE \`${t.name}\``);
    const started = Date.now();
    let lastLog = started;
    let inFlight: Promise<unknown> = Promise.resolve();
    for (let from = 0; from < opts.rows; from += BATCH) {
      const to = Math.min(opts.rows, from + BATCH);
      const pins: unknown[][] = [];
      const geos: unknown[][] = [];
      const users: unknown[][] = [];
      for (let k = from; k < to; k++) {
        const p = syntheticPost(opts.seed, k);
        pins.push(p.pin);
        geos.push(p.geo);
        users.push(p.user);
      }
      // Generate the next batch while this one is written (three tables in parallel).
      await inFlight;
      inFlight = Promise.all([insertRows(pool, SOURCE_TABLES[0]!, pins), insertRows(pool, SOURCE_TABLES[1]!, geos), insertRows(pool, SOURCE_TABLES[2]!, users)]);
      if (Date.now() - lastLog > 5_000) {
        lastLog = Date.now();
        log(`  ${to.toLocaleString('en')} / ${opts.rows.toLocaleString('en')} rows (${Math.round(to / ((Date.now() - started) / 1000)).toLocaleString('en')} rows/s)`);
      }
    }
    await inFlight;
    log(`seeded ${opts.rows.toLocaleString('en')} rows per table (seed ${opts.seed}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return opts.rows;
  } finally {
    await pool.end();
  }
}

export const COMMAND = defineCommand({
  script: 'db:seed',
  options: {
    rows: { value: 'N', help: 'rows per table, 1-50000000 (default 11154, like the original)' },
    seed: { value: 'S', help: 'the generator seed, an integer (default 100)' },
    replace: { help: 'replace tables that already hold rows' },
  },
  about:
    "Deterministic synthetic rows with the real data's shape (the same value mix and placeholders, 13 categories, real country names) in the three source tables. " +
    'Row k depends only on (seed, k), so a larger --rows extends a smaller one. Non-empty tables are refused unless --replace.',
});

/** The options -> what to seed; UsageError naming every bad value. */
export function parseSeedArgs(argv: string[]): { rows: number; seed: number; replace: boolean } {
  const opts = parseCommandLine(COMMAND, argv).values;
  const rows = Number(opts.rows ?? 11_154);
  const s = Number(opts.seed ?? 100);
  const bad = [
    ...(Number.isInteger(rows) && rows > 0 && rows <= 50_000_000 ? [] : [`--rows must be a whole number 1-50,000,000 (got ${opts.rows})`]),
    ...(Number.isInteger(s) ? [] : [`--seed must be an integer (got ${opts.seed})`]),
  ];
  if (bad.length) throw new UsageError(bad.join('\n'));
  return { rows, seed: s, replace: Boolean(opts.replace) };
}

if (require.main === module) {
  runCli(COMMAND, async (config, argv) => {
    await seed(config, { ...parseSeedArgs(argv), log: (l) => console.log(l) });
  });
}
