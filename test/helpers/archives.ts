import { decodePrefix, encodePrefix, PREFIX_BYTES, type Manifest } from '../../src/backup/archive-format.js';

/** An archive with its manifest edited and its checksum recomputed, as a forger who knows the format would. */
export function reforge(data: Buffer, edit: (manifest: Record<string, any>) => Record<string, any>): Buffer {
  const { manifest, prefixBytes } = decodePrefix(data, 'archive');
  return Buffer.concat([encodePrefix(edit(structuredClone(manifest)) as Manifest), data.subarray(prefixBytes)]);
}

/** An archive whose manifest text is edited in place (same length), its checksum left as it was: damage or a hand edit. */
export function editManifestText(data: Buffer, from: string, to: string): Buffer {
  if (from.length !== to.length) throw new Error('same length only');
  const length = data.readUInt32BE(8);
  const text = data.toString('latin1', PREFIX_BYTES, PREFIX_BYTES + length);
  if (!text.includes(from)) throw new Error(`manifest has no ${from}`);
  return Buffer.concat([data.subarray(0, PREFIX_BYTES), Buffer.from(text.replace(from, to), 'latin1'), data.subarray(PREFIX_BYTES + length)]);
}

/** The single-line, stack-free error every refusal must be. */
export function expectOneLine(stderr: string): void {
  const lines = stderr.trim().split('\n');
  if (lines.length !== 1 || !lines[0]!.startsWith('animus: ') || /\bat .+:\d+:\d+/.test(stderr)) throw new Error(`expected one error line, got:\n${stderr}`);
}
