import { createCipheriv, createDecipheriv, createHash, randomBytes, scrypt, timingSafeEqual, type CipherGCM, type DecipherGCM } from 'node:crypto';
import { AnimusError } from '../core/errors.js';
import { SCRYPT_WRITTEN, type EncryptionInfo } from './archive-format.js';

/** scrypt at 2^15 (about 32 MiB and a tenth of a second): costly to guess, cheap once per run. */
const SCRYPT = SCRYPT_WRITTEN;

export interface ArchiveKey {
  /** Everything of the encryption header but the per-archive iv. */
  params: Omit<EncryptionInfo, 'iv'>;
  key: Buffer;
}

/**
 * Derives the key for a run of backups: one scrypt for the whole run (a thousand
 * archives must not cost a thousand derivations); each archive still gets its own
 * random iv, which is what GCM needs.
 */
export async function deriveNewKey(passphrase: string): Promise<ArchiveKey> {
  const salt = randomBytes(16);
  const { key, check } = await derive(passphrase, salt, SCRYPT);
  return { key, params: { cipher: 'aes-256-gcm', kdf: 'scrypt', ...SCRYPT, salt: salt.toString('base64'), keyCheck: check } };
}

/** The key for an archive (its cost parameters were bounded when its manifest was read); EBADARCHIVE naming the passphrase when it is not the one used. */
export async function deriveKeyFor(info: EncryptionInfo, passphrase: string, source: string): Promise<Buffer> {
  const { key, check } = await derive(passphrase, Buffer.from(info.salt, 'base64'), info);
  const expected = Buffer.from(info.keyCheck, 'hex');
  const actual = Buffer.from(check, 'hex');
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
    throw new AnimusError('EBADARCHIVE', `wrong passphrase for ${source}: set ANIMUS_BACKUP_PASSPHRASE to the passphrase it was made with`);
  }
  return key;
}

function derive(passphrase: string, salt: Buffer, cost: { N: number; r: number; p: number }): Promise<{ key: Buffer; check: string }> {
  if (passphrase === '') throw new AnimusError('EUSAGE', 'the backup passphrase is empty: set ANIMUS_BACKUP_PASSPHRASE');
  return new Promise((resolve, reject) => {
    scrypt(passphrase.normalize('NFC'), salt, 64, { N: cost.N, r: cost.r, p: cost.p, maxmem: 256 * cost.N * cost.r + 1024 * 1024 }, (error, derived) => {
      if (error) reject(new AnimusError('EIO', `cannot derive the backup key: ${error.message}`, { cause: error }));
      // First half encrypts; the second only proves the passphrase and reveals nothing of the first.
      else resolve({ key: derived.subarray(0, 32), check: createHash('sha256').update(derived.subarray(32)).digest('hex') });
    });
  });
}

export function newIv(): Buffer {
  return randomBytes(12);
}

export function encryptor(key: Buffer, iv: Buffer, aad: Buffer): CipherGCM {
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  return cipher;
}

export function decryptor(key: Buffer, iv: Buffer, aad: Buffer, tag: Buffer): DecipherGCM {
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  return decipher;
}
