/** Runs at most `limit` tasks at a time; further calls wait their turn (FIFO). */
export function createLimiter(limit: number): <T>(task: () => Promise<T>) => Promise<T> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`concurrency must be a positive integer, got ${limit}`);
  let active = 0;
  // A queue with a head index: Array#shift is O(n), and a 20,000-file context queues 20,000 waiters.
  let waiting: Array<(() => void) | undefined> = [];
  let head = 0;
  const next = (): void => {
    active--;
    const wake = waiting[head];
    if (wake === undefined) return;
    waiting[head++] = undefined;
    if (head === waiting.length) {
      waiting = [];
      head = 0;
    }
    wake();
  };
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      next();
    }
  };
}
