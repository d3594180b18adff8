/**
 * The values of a .env text, read exactly as dotenv 17 reads them (the runtime read
 * .env files with dotenv until now, and older runtime builds still do: a file means the
 * same to both). Written here instead of loading dotenv because dotenv's module loads
 * `node:crypto` (for its encrypted vaults, which animus never uses), and that costs an
 * idle agent about a megabyte of memory.
 *
 * The rules, as dotenv applies them (its parser is one regular expression, scanned over
 * the text with the `m` flag; this is a scanner that makes the same choices):
 * - CRLF and lone CR become LF first. An entry starts at a line start, after any
 *   whitespace (blank lines included): an optional `export` and whitespace, a key of
 *   `[A-Za-z0-9_.-]+`, then `=` (whitespace around it allowed) or `:` and one whitespace.
 *   A line where no entry starts is skipped.
 * - The value is, in this order of preference: a quoted value (`'`, `"` or `` ` ``,
 *   possibly over several lines, a backslash before the quote keeping it inside) whose
 *   closing quote is followed only by whitespace and an optional `# comment`; else the
 *   rest of the line up to a `#`; else nothing.
 * - Then it is trimmed, surrounding quotes are removed, and a value that began with `"`
 *   gets `\n` and `\r` turned into line breaks. A key given twice keeps its last value.
 */
export function parseEnvText(source: string): Record<string, string> {
  const text = source.replace(/\r\n?/g, '\n');
  const values: Record<string, string> = {};
  let from = 0;
  while (from < text.length) {
    const lineStart = nextLineStart(text, from);
    if (lineStart === undefined) break;
    const entry = entryAt(text, skipSpace(text, lineStart));
    if (!entry) {
      from = lineStart + 1;
      continue;
    }
    values[entry.key] = finishValue(entry.raw ?? '');
    from = entry.end;
  }
  return values;
}

interface Entry {
  key: string;
  raw: string | undefined;
  /** Where the search for the next entry goes on. */
  end: number;
}

const isSpace = (c: string | undefined) => c !== undefined && /\s/.test(c);
/** What `^`, `$` and `.` of a JavaScript regular expression treat as a line end. */
const isLineEnd = (c: string | undefined) => c === '\n' || c === '\r' || c === '\u2028' || c === '\u2029';
const isKeyChar = (c: string | undefined) => c !== undefined && /[\w.-]/.test(c);

function skipSpace(text: string, at: number): number {
  while (isSpace(text[at])) at++;
  return at;
}

function nextLineStart(text: string, from: number): number | undefined {
  for (let at = from; at < text.length; at++) if (at === 0 || isLineEnd(text[at - 1])) return at;
  return undefined;
}

function entryAt(text: string, at: number): Entry | undefined {
  if (text.startsWith('export', at) && isSpace(text[at + 6])) {
    const entry = keyAt(text, skipSpace(text, at + 6));
    if (entry) return entry;
  }
  return keyAt(text, at);
}

function keyAt(text: string, at: number): Entry | undefined {
  let end = at;
  while (isKeyChar(text[end])) end++;
  if (end === at) return undefined;
  const key = text.slice(at, end);
  const equals = skipSpace(text, end);
  if (text[equals] === '=') return { key, ...valueAt(text, equals + 1) };
  if (text[end] === ':' && isSpace(text[end + 1])) return { key, ...valueAt(text, end + 2) };
  return undefined;
}

function valueAt(text: string, at: number): { raw: string | undefined; end: number } {
  for (const quote of ["'", '"', '`']) {
    const open = skipSpace(text, at);
    if (text[open] !== quote) continue;
    for (const close of closingQuotes(text, open, quote)) {
      if (onlyCommentAfter(text, close + 1)) return { raw: text.slice(at, close + 1), end: close + 1 };
    }
  }
  let end = at;
  while (end < text.length && text[end] !== '#' && text[end] !== '\n' && text[end] !== '\r') end++;
  return { raw: end > at ? text.slice(at, end) : undefined, end };
}

/** Where a quoted value may close: the first unescaped quote, else an escaped one, the last first. */
function closingQuotes(text: string, open: number, quote: string): number[] {
  const escaped: number[] = [];
  for (let at = open + 1; at < text.length; at++) {
    if (text[at] === '\\' && text[at + 1] === quote) {
      escaped.push(++at);
      continue;
    }
    if (text[at] === quote) return [at, ...escaped.reverse()];
  }
  return escaped.reverse();
}

/** Whitespace, then a `#` comment or the end of a line. */
function onlyCommentAfter(text: string, at: number): boolean {
  let end = at;
  while (isSpace(text[end])) {
    if (isLineEnd(text[end])) return true;
    end++;
  }
  return end === text.length || text[end] === '#';
}

function finishValue(raw: string): string {
  const value = raw.trim();
  const unquoted = stripQuotes(value);
  return value[0] === '"' ? unquoted.replaceAll('\\n', '\n').replaceAll('\\r', '\r') : unquoted;
}

/** Removes a quote pair around each line-started stretch that begins with a quote and ends with it at a line end (the widest such stretch). */
function stripQuotes(value: string): string {
  let out = '';
  let copied = 0;
  for (let at = 0; at < value.length; at++) {
    if (at !== 0 && !isLineEnd(value[at - 1])) continue;
    const quote = value[at]!;
    if (quote !== "'" && quote !== '"' && quote !== '`') continue;
    let close = -1;
    for (let end = value.length - 1; end > at; end--) {
      if (value[end] === quote && (end + 1 === value.length || isLineEnd(value[end + 1]))) {
        close = end;
        break;
      }
    }
    if (close < 0) continue;
    out += value.slice(copied, at) + value.slice(at + 1, close);
    copied = close + 1;
    at = close;
  }
  return out + value.slice(copied);
}
