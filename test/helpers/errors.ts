import { AnimusError } from '../../src/core/errors.js';

/** The AnimusError that `fn` throws; fails the test when it throws nothing or something else. */
export function errorOf(fn: () => unknown): AnimusError {
  try {
    fn();
  } catch (error) {
    if (error instanceof AnimusError) return error;
    throw error;
  }
  throw new Error('expected an AnimusError');
}
