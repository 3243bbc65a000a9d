import { chown, mkdir } from 'node:fs/promises';
import type { CacheSharing } from '../dockerfile/run-mount.js';

/** A cache mount a RUN holds while it runs. */
export interface CacheMountLease {
  dir: string;
  release(): void;
}

/** How the cache directory is created the first time. */
export interface CacheDirOptions {
  mode: number;
  uid: number;
  gid: number;
}

/**
 * `RUN --mount=type=cache` directories shared among the RUNs of one build, with BuildKit's `sharing` modes:
 * `shared` lets concurrent RUNs use the directory together, `locked` makes a RUN wait until no other holds it,
 * `private` gives a RUN that finds it busy a directory of its own (`<dir>.N`, kept for later builds too).
 */
export class CacheMountLeases {
  private readonly holders = new Map<string, number>();
  private readonly waiters = new Map<string, Array<() => void>>();

  async acquire(base: string, sharing: CacheSharing, options: CacheDirOptions): Promise<CacheMountLease> {
    let dir = base;
    if (sharing === 'locked') {
      while ((this.holders.get(dir) ?? 0) > 0) await new Promise<void>((resolve) => this.queue(dir).push(resolve));
    } else if (sharing === 'private') {
      for (let n = 1; (this.holders.get(dir) ?? 0) > 0; n++) dir = `${base}.${n}`;
    }
    this.holders.set(dir, (this.holders.get(dir) ?? 0) + 1);
    try {
      await mkdir(dir, { recursive: true, mode: options.mode });
      if (process.getuid?.() === 0) await chown(dir, options.uid, options.gid);
    } catch (err) {
      this.release(dir);
      throw err;
    }
    let released = false;
    return {
      dir,
      release: () => {
        if (released) return;
        released = true;
        this.release(dir);
      },
    };
  }

  private release(dir: string): void {
    const left = (this.holders.get(dir) ?? 1) - 1;
    if (left > 0) this.holders.set(dir, left);
    else this.holders.delete(dir);
    this.queue(dir).shift()?.();
  }

  private queue(dir: string): Array<() => void> {
    let q = this.waiters.get(dir);
    if (!q) {
      q = [];
      this.waiters.set(dir, q);
    }
    return q;
  }
}
