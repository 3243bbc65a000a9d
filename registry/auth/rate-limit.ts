import { RegistryError } from '../errors.js';
import type { RateLimitSettings } from './settings.js';

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets kept before idle (full) ones are dropped. */
const PRUNE_AT = 10_000;

/**
 * Token buckets by key (`address:…`, `user:…`): `burst` requests at once, refilled at
 * `requestsPerSecond`. Over the limit is 429 TOOMANYREQUESTS with `Retry-After` in whole seconds.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly settings: RateLimitSettings;
  private readonly now: () => number;

  constructor(settings: RateLimitSettings, now: () => number = Date.now) {
    this.settings = settings;
    this.now = now;
  }

  /** Takes one request from `key`'s bucket, or throws TOOMANYREQUESTS naming `who`. */
  take(key: string, who: string): void {
    const { requestsPerSecond: rate, burst } = this.settings;
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    if (bucket.tokens < 1) {
      this.buckets.set(key, bucket);
      const retry = Math.max(1, Math.ceil((1 - bucket.tokens) / rate));
      throw new RegistryError('TOOMANYREQUESTS', `too many requests from ${who}: the limit is ${rate} per second with bursts of ${burst}; retry in ${retry} s`, {
        headers: { 'Retry-After': String(retry) },
        detail: { requestsPerSecond: rate, burst },
      });
    }
    bucket.tokens -= 1;
    if (!this.buckets.has(key) && this.buckets.size >= PRUNE_AT) this.prune(now);
    this.buckets.set(key, bucket);
  }

  /** Drops buckets that have refilled completely: they behave exactly like absent ones. */
  private prune(now: number): void {
    const { requestsPerSecond: rate, burst } = this.settings;
    for (const [key, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * rate >= burst) this.buckets.delete(key);
  }
}
