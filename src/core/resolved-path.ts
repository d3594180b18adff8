import { resolve, sep } from 'node:path';

/**
 * resolve(path), without its work for a path that is absolute and normal already (no
 * `//`, no `.` or `..` segment, no trailing separator): health and list ask for the home
 * and every agent folder's names for every agent of a large home, and those paths are
 * normal. For such a path resolve() returns it unchanged, so the answer is the same.
 */
export function resolvedPath(path: string): string {
  if (sep === '/' && path.startsWith('/') && !path.includes('//') && !/\/\.\.?(\/|$)/.test(path) && (path === '/' || !path.endsWith('/'))) return path;
  return resolve(path);
}
