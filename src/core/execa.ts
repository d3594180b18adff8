import { importEsm } from './import-esm.js';

/**
 * execa on first use: at some 150 files it is not for the commands that start no
 * child process (health, status, list). ESM only, so through importEsm.
 */
export async function loadExeca(): Promise<typeof import('execa').execa> {
  return (await importEsm<typeof import('execa')>('execa')).execa;
}
