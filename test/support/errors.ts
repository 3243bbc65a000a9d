import { expect } from 'vitest';
import { KilnError } from '../../oci/errors.js';

/** The KilnError `fn` throws, failing the test when it returns or throws something else. */
export function thrown(fn: () => unknown): KilnError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KilnError);
    return err as KilnError;
  }
  throw new Error('expected an error');
}

/** The KilnError `p` rejects with, failing the test when it resolves or rejects with something else. */
export async function rejection(p: Promise<unknown>): Promise<KilnError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KilnError);
  return err as KilnError;
}
