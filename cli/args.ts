/**
 * The command line of pinflow's commands, declared once per command (`defineCommand`): its
 * options with their help text, and its positional arguments. From the declaration come the
 * usage line (`usageLine`), the `--help` text (`helpText`) and the parse (`parseCommandLine`,
 * Node's util.parseArgs in strict mode):
 * - an unknown option, an option without its value, a value given to a switch, or a
 *   positional argument the command does not take is a UsageError naming it (exit 2);
 * - `-h` / `--help` throws HelpRequested, whose message is the help text (exit 0).
 * A value that starts with '-' is given as `--name=-value`; negative numbers (`--rows -3`)
 * are taken as values as they stand. The last of a repeated option counts.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A command-line mistake: the command exits 2 with this message and the usage line. */
export class UsageError extends Error {}

/** `--help` was given: the message is the help text (the command prints it and exits 0). */
export class HelpRequested extends Error {}

export interface OptionDecl {
  /** The value's placeholder in the usage (`N`, `DIR`): the option takes a value. Absent: a switch. */
  value?: string;
  /** One line for `--help`. */
  help: string;
  /** Shown without brackets in the usage line; the command itself says when it is missing. */
  required?: boolean;
}

export interface CommandDecl<O extends Record<string, OptionDecl> = Record<string, OptionDecl>> {
  /** The npm script: the command runs as `npm run <script>`. */
  script: string;
  /** The name in "<name> failed: ..." (default: the script). */
  name?: string;
  /** The positional arguments as the usage line shows them (`start|stop|status`); absent: none taken. */
  args?: string;
  /** How many positional arguments at most (default: no limit when `args` is given). */
  maxArgs?: number;
  /** What the command does: the text of `--help` under the usage line. */
  about: string;
  /** The options by name, without the leading `--`. */
  options: O;
}

/** The parsed options: a string for each option given with a value, true for each switch given. */
export type OptionValues<O> = { [K in keyof O]?: O[K] extends { value: string } ? string : boolean };

export interface ParsedCommandLine<O> {
  values: OptionValues<O>;
  positionals: string[];
}

/** Declares a command's command line (the identity: it only fixes the option names' types). */
export function defineCommand<O extends Record<string, OptionDecl>>(decl: CommandDecl<O>): CommandDecl<O> {
  return decl;
}

const HELP: OptionDecl = { help: 'print this help and exit' };
const EXIT_STATUS = 'exit status: 0 done, 1 failed, 2 usage or configuration error';

function optionUsage(name: string, o: OptionDecl): string {
  const text = `--${name}${o.value ? ` ${o.value}` : ''}`;
  return o.required ? text : `[${text}]`;
}

/** `npm run land -- [--until-now] [--follow] ...` */
export function usageLine(decl: CommandDecl): string {
  const parts = [...(decl.args ? [decl.args] : []), ...Object.entries(decl.options).map(([n, o]) => optionUsage(n, o))];
  return `npm run ${decl.script}${parts.length ? ` -- ${parts.join(' ')}` : ''}`;
}

/** Words into lines of at most `width` characters (a longer word stands alone). */
function wrap(text: string, width = 100): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.trim().split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return line ? [...lines, line] : lines;
}

/** The `--help` text: usage line, what the command does, one line per option, the exit statuses. */
export function helpText(decl: CommandDecl): string {
  const rows: Array<[string, string]> = Object.entries(decl.options).map(([n, o]) => [`--${n}${o.value ? ` ${o.value}` : ''}`, o.help]);
  rows.push(['-h, --help', HELP.help]);
  const width = Math.max(...rows.map(([left]) => left.length));
  return [`usage: ${usageLine(decl)}`, '', ...wrap(decl.about), '', 'options:', ...rows.map(([left, help]) => `  ${left.padEnd(width)}  ${help}`), '', EXIT_STATUS].join('\n');
}

type ParseOptions = NonNullable<ParseArgsConfig['options']>;

function parseArgsOptions(decl: CommandDecl): ParseOptions {
  const options: ParseOptions = { help: { type: 'boolean', short: 'h' } };
  for (const [name, o] of Object.entries(decl.options)) options[name] = { type: o.value ? 'string' : 'boolean' };
  return options;
}

/** `--rows -3` -> `--rows=-3`: a negative number after a value option is its value. */
function joinNegativeNumbers(decl: CommandDecl, argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    const o = a.startsWith('--') ? decl.options[a.slice(2)] : undefined;
    if (o?.value && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** What util.parseArgs refused, in words naming the option (read from its tokens, which do not throw). */
function diagnose(decl: CommandDecl, argv: string[], options: ParseOptions): string | undefined {
  const { tokens } = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  let positionals = 0;
  for (const t of tokens) {
    if (t.kind === 'option') {
      const o = options[t.name];
      if (!o) return `unknown option ${t.rawName}`;
      if (o.type === 'string' && (t.value === undefined || (!t.inlineValue && t.value.startsWith('-')))) {
        const swallowed = t.value?.replace(/^-+/, '').split('=')[0];
        const hint = t.value === undefined || (swallowed !== undefined && (swallowed in options || swallowed === 'h')) ? '' : ` (write ${t.rawName}=${t.value} if ${t.value} is the value)`;
        return `${t.rawName} needs a value${hint}`;
      }
      if (o.type === 'boolean' && t.value !== undefined) return `${t.rawName} takes no value`;
    } else if (t.kind === 'positional') {
      positionals++;
      if (!decl.args || (decl.maxArgs !== undefined && positionals > decl.maxArgs)) return `unexpected argument ${JSON.stringify(t.value)}`;
    }
  }
  return undefined;
}

/**
 * Parses `argv` (the arguments after the script) against the declaration. Throws HelpRequested
 * for `-h`/`--help`, a UsageError naming the option or argument for anything it refuses.
 */
export function parseCommandLine<O extends Record<string, OptionDecl>>(decl: CommandDecl<O>, argv: string[]): ParsedCommandLine<O> {
  const args = joinNegativeNumbers(decl, argv);
  const options = parseArgsOptions(decl);
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: decl.args !== undefined });
  } catch (err) {
    if (!String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS')) throw err;
    throw new UsageError(diagnose(decl, args, options) ?? (err as Error).message);
  }
  const { help, ...values } = parsed.values;
  if (help) throw new HelpRequested(helpText(decl));
  if (decl.maxArgs !== undefined && parsed.positionals.length > decl.maxArgs) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[decl.maxArgs])}`);
  return { values: values as OptionValues<O>, positionals: parsed.positionals };
}
