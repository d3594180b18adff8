import { closeSync, fstatSync, readSync, writeSync } from 'node:fs';
import { openAgentFileSync } from '../core/agent-fs.js';

/**
 * Bounds a log the runtime does not write itself (PM2's `logs/runtime.err.log`: start-up
 * errors and crashes): above `maxBytes` it is cut to its last `keepBytes`, in place.
 * Writers append with O_APPEND, so their next line lands at the new end.
 */
export function trimLog(agentDir: string, rel: string, maxBytes: number, keepBytes: number): boolean {
  const fd = openAgentFileSync(agentDir, rel);
  if (fd === undefined) return false;
  let tail: Buffer;
  try {
    const size = fstatSync(fd).size;
    if (size <= maxBytes) return false;
    tail = Buffer.alloc(Math.min(keepBytes, size));
    readSync(fd, tail, 0, tail.length, size - tail.length);
  } finally {
    closeSync(fd);
  }
  // From the first whole line on.
  const start = tail.indexOf(0x0a) + 1;
  const out = openAgentFileSync(agentDir, rel, { flags: 'w' })!;
  try {
    writeSync(out, `[animus: older lines trimmed to keep this file under ${Math.round(maxBytes / 1024)} KiB]\n`);
    writeSync(out, tail.subarray(start));
  } finally {
    closeSync(out);
  }
  return true;
}
