import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolvedPath } from '../../src/core/resolved-path.js';

describe('resolvedPath', () => {
  it('answers what resolve() answers, for normal paths and for every shape it must not take as one', () => {
    const paths = ['/', '/home/a/animus', '/home/a/animus/agent-1', 'relative/x', '.', '', '//x', '/a//b', '/a/./b', '/a/../b', '/a/.', '/a/..', '/a/b/', '/a/.hidden', '/a/..b', '/a/b..', '/a/...'];
    for (const path of paths) expect(resolvedPath(path), path).toBe(resolve(path));
  });
});
