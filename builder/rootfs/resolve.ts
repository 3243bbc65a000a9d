import { lstatSync, mkdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../../oci/errors.js';

// Linux's limit on symlinks followed while resolving one path (MAXSYMLINKS).
const MAX_SYMLINK_HOPS = 40;

/**
 * Resolves directory paths inside a root the way the kernel would inside a chroot of it: symlinks in the path are
 * followed, absolute targets restart at the root, and a '..' that would climb above the root is an escape
 * (UNSAFE_PATH) rather than being clamped, because a layer that tries it is hostile. Results are cached until
 * `invalidate()` (call it after removing or replacing anything in the tree). Synchronous, as the applier's calls.
 */
export class RootResolver {
  private readonly cache = new Map<string, string>();

  constructor(
    readonly root: string,
    /** Prefix of error messages, e.g. `layer sha256:…`. */
    private readonly subject: string,
  ) {}

  /** Forgets cached resolutions; needed once a path component may have been replaced. */
  invalidate(): void {
    this.cache.clear();
  }

  /**
   * Real absolute path of the directory `components` names (symlinks followed within the root). Missing
   * directories are created (mode 0755) when `create`, else the result is undefined. `entry` names the member for errors.
   */
  dir(components: string[], entry: string, create: boolean): string | undefined {
    const key = components.join('/');
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const real: string[] = [];
    const pending = [...components];
    let hops = 0;
    while (pending.length > 0) {
      const part = pending.shift() as string;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (real.length === 0) throw this.unsafe(entry, `climbs above the root through "${key}"`);
        real.pop();
        continue;
      }
      const abs = join(this.root, ...real, part);
      const st = lstatSync(abs, { throwIfNoEntry: false });
      if (st === undefined) {
        if (!create) return undefined;
        mkdirSync(abs, 0o755);
        real.push(part);
      } else if (st.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS) throw this.unsafe(entry, `goes through more than ${MAX_SYMLINK_HOPS} symlinks in "${key}"`);
        const target = readlinkSync(abs);
        // An absolute target means the root of the image, not of the host.
        if (target.startsWith('/')) real.length = 0;
        pending.unshift(...target.split('/'));
      } else if (st.isDirectory()) {
        real.push(part);
      } else {
        throw new KilnError('VALIDATION', `${this.subject}: entry "${entry}" needs "${[...real, part].join('/')}" to be a directory, but the layers below made it a file`);
      }
    }
    const result = join(this.root, ...real);
    this.cache.set(key, result);
    return result;
  }

  private unsafe(entry: string, why: string): KilnError {
    return new KilnError('UNSAFE_PATH', `${this.subject}: entry "${entry}" ${why}; refusing a path outside the root`);
  }
}
