import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AnimusError, describeError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fs.js';
import { renderUnits, type SystemdScope } from './systemd-units.js';

export interface RenderToOptions {
  home: string;
  out: string;
  scope?: SystemdScope;
  user?: string;
  env?: NodeJS.ProcessEnv;
}

/** `animus systemd render`: the units `install` would write, into a folder of the caller's choice. */
export async function renderUnitsTo(options: RenderToOptions): Promise<{ scope: SystemdScope; files: string[] }> {
  const scope = options.scope ?? (process.getuid?.() === 0 ? 'system' : 'user');
  const units = await renderUnits({ home: options.home, scope, user: options.user });
  const out = resolve(options.out);
  try {
    await mkdir(out, { recursive: true });
  } catch (error) {
    throw new AnimusError('EIO', `cannot create ${out} (${describeError(error)}): pick a writable folder for --out`, { cause: error });
  }
  const files: string[] = [];
  for (const unit of units) {
    const path = join(out, unit.name);
    await writeFileAtomic(path, unit.content, 0o644);
    files.push(path);
  }
  return { scope, files };
}
