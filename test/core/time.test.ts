import { describe, expect, it } from 'vitest';
import { isoTime } from '../../src/core/time.js';

describe('isoTime', () => {
  it.each([0, 1, 999, 1000, 951782400000, 1767225599999, 1778803200123, 253402300799999, -1, -62167219200000, 253402300800000, -62167219200001, 8.64e15])(
    'is toISOString for %d',
    (ms) => {
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
      expect(isoTime(new Date(ms))).toBe(new Date(ms).toISOString());
    },
  );

  it('is toISOString for every millisecond field and many days', () => {
    for (let ms = 1767225600000 - 5000; ms < 1767225600000 + 5000; ms += 7) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    for (let day = -800_000; day < 3_000_000; day += 997) expect(isoTime(day * 86_400_000 + 45_296_789)).toBe(new Date(day * 86_400_000 + 45_296_789).toISOString());
  });

  it('throws as toISOString does for an invalid date', () => {
    expect(() => isoTime(Number.NaN)).toThrow(RangeError);
    expect(() => isoTime(8.64e15 + 1)).toThrow(RangeError);
  });

  it('is now by default', () => {
    const before = Date.now();
    const text = isoTime();
    expect(Date.parse(text)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(text)).toBeLessThanOrEqual(Date.now());
  });
});
