import { parse } from 'dotenv';
import { describe, expect, it } from 'vitest';
import { parseEnvText } from '../../src/config/env-syntax.js';

/**
 * The runtime reads .env files with its own scanner now; older runtime builds (and the
 * files operators wrote for them) read them with dotenv. Every text must mean the same
 * to both, so each case is checked against dotenv itself.
 */
describe('.env syntax, as dotenv reads it', () => {
  it.each([
    ['plain, export, comments', '# c\nA=1\nexport B="two words"\nC=\'x#y\'\n\nD=\nE=v # note\n'],
    ['quotes inside and around', 'A="it\'s"\nB=\'say "hi"\'\nC=`both \' and "`\nD="a"b"\nE=\'x\' junk\n'],
    ['escapes in double quotes only', 'A="l1\\nl2\\r"\nB=\'l1\\nl2\'\nC=l1\\nl2\nD="esc \\" quote"\n'],
    ['a value over several lines', 'KEY="-----BEGIN-----\nabc\n-----END-----"\nNEXT=1\n'],
    ['CRLF and lone CR', 'A=1\r\nB="x"\r\nC=3\rD=4'],
    ['whitespace around = and values', '  A =  spaced  \nB=\t\tTAB\t\nexport   C = 3\nD:  colon\n'],
    ['the last of a repeated key', 'A=1\nA=2\n'],
    ['a quote that closes only at an escaped one', 'A="a\\"\nb\\"\nc" junk\nB=2\n'],
    ['empty and comment-only values', 'A=\nB=#c\nC= # c\nD=""\nE=\'\'\n'],
  ])('%s', (_name, text) => {
    expect(parseEnvText(text)).toEqual(parse(text));
  });

  it('matches dotenv on 20000 generated texts made of the characters that matter', () => {
    // A fixed seed: the same texts on every run, so a failure names one text to look at.
    let seed = 20260515;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const atoms = ['A', 'k', '_', 'x', '.', '-', '=', '=', ':', ' ', ' ', '\t', '\n', '\n', '\r', '\r\n', "'", '"', '`', '\\', '\\n', '#', ' # c', 'export ', '\u2028', '\u00a0', 'A=', 'B="', "C='", 'D=`', '\nE=', '\\"\n', "\\'\n", '" junk', "'\u2028", '\u2028"'];
    const mismatches: Array<{ text: string; dotenv: unknown; ours: unknown }> = [];
    for (let n = 0; n < 20_000 && mismatches.length < 3; n++) {
      let text = '';
      for (let i = 1 + Math.floor(random() * 30); i > 0; i--) text += atoms[Math.floor(random() * atoms.length)];
      const dotenv = parse(text);
      const ours = parseEnvText(text);
      if (JSON.stringify(ours) !== JSON.stringify(dotenv)) mismatches.push({ text, dotenv, ours });
    }
    expect(mismatches).toEqual([]);
  });
});
