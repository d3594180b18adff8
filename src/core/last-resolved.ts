import { isAbsolute, resolve } from 'node:path';

/**
 * A resolve() that remembers its last absolute path (pure for those: no cwd involved),
 * for a caller that asks for the same folder many times in a row: health and list ask
 * for the home, then for each agent folder's names, for every agent of a large home.
 */
export function lastResolved(): (path: string) => string {
  let last: string | undefined;
  let resolved = '';
  return (path) => {
    if (path === last) return resolved;
    const result = resolve(path);
    if (isAbsolute(path)) {
      last = path;
      resolved = result;
    }
    return result;
  };
}
