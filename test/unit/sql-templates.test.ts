/**
 * SQL templates of sql/render.ts (`sql/templates/<name>.sql`, called as `@name(param => value)`):
 * how a call fills a template, the errors a wrong call gets, and the shared "latest record per
 * key" template run on DuckDB in batch and stream mode. The statements built on the templates
 * are checked by their results in cleaning-rules.test.ts and against Spark in
 * spark-equality.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { withConnection } from '../../adapters/duckdb/connection';
import { expandMacros, fillTemplate } from '../../sql/render';

describe('SQL templates', () => {
  test('each {param} takes its value; string literals and comments are left as written', () => {
    const template = "-- {a} in a comment\nSELECT {a}, '{a}' AS lit, {b}\nFROM t WHERE {a} > 1";
    assert.equal(fillTemplate('t', template, ['a => x + 1', 'b => f(y, z)']), "-- {a} in a comment\nSELECT x + 1, '{a}' AS lit, f(y, z)\nFROM t WHERE x + 1 > 1");
  });

  test('a wrong call is refused with the template and the parameter named', () => {
    const template = 'SELECT {a}, {b}';
    assert.throws(() => fillTemplate('t', template, ['a => 1']), /@t\(\.\.\.\): no value for \{b\}/);
    assert.throws(() => fillTemplate('t', template, ['a => 1', 'b => 2', 'c => 3']), /template sql\/templates\/t\.sql has no \{c\}/);
    assert.throws(() => fillTemplate('t', template, ['a => 1', 'a => 2', 'b => 2']), /a is given twice/);
    assert.throws(() => fillTemplate('t', template, ['a => 1', 'b']), /expected `param => value`, got "b"/);
    assert.throws(() => fillTemplate('t', template, ['a => 1', 'b =>']), /expected `param => value`/);
  });

  test('a call expands the filled template for the dialect; macros in values expand too', () => {
    const call = '@popular_category(group => age_group, where => age_group IS NOT NULL, order_by => @age_group_rank(age_group))';
    for (const [dialect, quoted] of [['duckdb', '"x"'], ['spark', '`x`']] as const) {
      const sql = expandMacros(`${call} -- @q(x)\nUNION ALL SELECT @q(x)`, dialect);
      assert.match(sql, /WHERE age_group IS NOT NULL AND category IS NOT NULL\s+GROUP BY age_group, category/);
      assert.match(sql, /PARTITION BY age_group ORDER BY category_count DESC/);
      assert.match(sql, /ORDER BY CASE age_group WHEN '18-24' THEN 1 .* END, category/);
      assert.ok(sql.endsWith(`UNION ALL SELECT ${quoted}`), sql);
      assert.doesNotMatch(sql, /[@{]/);
    }
    assert.throws(() => expandMacros('@popular_category(group => country)', 'duckdb'), /no value for \{where\}/);
    assert.throws(() => expandMacros('@popular_category(group => country', 'duckdb'), /unbalanced/);
  });

  describe('latest_per_key on DuckDB', () => {
    // (key, object, start_offset, line_no, elem_no, is_record): keys 1 and 2 landed twice, one
    // record with no usable key, one that is not an object.
    const records = `(SELECT * FROM (VALUES
      ('1', 'o0', 0, 0, 0, true, 'old'), (' 1.0 ', 'o10', 10, 0, 0, true, 'later offset'),
      ('2', 'o5', 5, 1, 0, true, 'first element'), ('2', 'o5', 5, 1, 1, true, 'later element'),
      ('x', 'o5', 5, 2, 0, true, 'no key'), (NULL, 'o5', 5, 3, 0, false, NULL), ('"3"', 'o8', 8, 0, 0, true, 'junk key'), ('3', 'o8', 8, 2, 0, true, 'three')
    ) v(raw_ind, src_file, start_offset, line_no, elem_no, is_record, raw_v))`;
    const query = (stream: boolean) =>
      withConnection(':memory:', async (c) =>
        (await c.runAndReadAll(`SELECT ind, raw_v FROM (${expandMacros(`@latest_per_key(records => ${records}, key => raw_ind)`, 'duckdb', { stream })}) ORDER BY ind, raw_v`)).getRowObjectsJS(),
      );

    test('batch: one row per usable key, the latest record', async () => {
      assert.deepEqual(await query(false), [
        { ind: 1n, raw_v: 'later offset' },
        { ind: 2n, raw_v: 'later element' },
        { ind: 3n, raw_v: 'three' },
      ]);
    });

    test('stream: every record with a usable key is its own row', async () => {
      assert.deepEqual(await query(true), [
        { ind: 1n, raw_v: 'later offset' },
        { ind: 1n, raw_v: 'old' },
        { ind: 2n, raw_v: 'first element' },
        { ind: 2n, raw_v: 'later element' },
        { ind: 3n, raw_v: 'three' },
      ]);
    });
  });
});
