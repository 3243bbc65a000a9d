import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Absolute path of a peer program the tests run against; throws with the install command when
 * it is missing, because a skipped interop test would hide a regression.
 */
export function requirePeer(binary: string, aptPackage: string): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this PATH entry; keep looking.
    }
  }
  throw new Error(`${binary} not found: apt-get install -y ${aptPackage}`);
}
