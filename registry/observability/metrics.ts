import type { IncomingMessage } from 'node:http';

/** Label values of one series; a label left out is empty, which Prometheus reads as absent. */
export type Labels = Readonly<Record<string, string | number>>;

/** One metric family in the Prometheus text exposition format (version 0.0.4). */
abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  /** `# HELP`, `# TYPE` and sample lines. */
  abstract render(): string;

  /** The `{a="x",b="y"}` part of a series (also its key). */
  protected key(labels: Labels): string {
    if (this.labelNames.length === 0) return '';
    let out = '{';
    for (let i = 0; i < this.labelNames.length; i++) {
      const name = this.labelNames[i] as string;
      out += `${i === 0 ? '' : ','}${name}="${escapeLabel(String(labels[name] ?? ''))}"`;
    }
    return `${out}}`;
  }

  protected header(type: string): string {
    return `# HELP ${this.name} ${this.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${this.name} ${type}\n`;
  }
}

/** Series of plain numbers per label set: what counters and gauges share. */
abstract class NumberSeries extends Metric {
  protected readonly values = new Map<string, number>();
  protected abstract readonly type: 'counter' | 'gauge';

  /** Adds `by` (default 1) to the series of `labels`. */
  inc(labels: Labels = {}, by = 1): void {
    const key = this.key(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  /** Current value of a series (tests, summaries). */
  get(labels: Labels = {}): number {
    return this.values.get(this.key(labels)) ?? 0;
  }

  override render(): string {
    let out = this.header(this.type);
    if (this.values.size === 0 && this.labelNames.length === 0) return `${out}${this.name} 0\n`;
    for (const [key, value] of this.values) out += `${this.name}${key} ${value}\n`;
    return out;
  }
}

/** A value that only goes up (requests, bytes). */
export class Counter extends NumberSeries {
  protected readonly type = 'counter';
}

/** A value that goes up and down (requests in flight, open sessions); `inc` with a negative `by` decreases. */
export class Gauge extends NumberSeries {
  protected readonly type = 'gauge';

  /** Sets the series of `labels`. */
  set(value: number, labels: Labels = {}): void {
    this.values.set(this.key(labels), value);
  }
}

/** Observations counted into cumulative buckets (durations). */
export class Histogram extends Metric {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();

  constructor(name: string, help: string, labelNames: readonly string[], readonly buckets: readonly number[]) {
    super(name, help, labelNames);
  }

  /** Records one observation. */
  observe(value: number, labels: Labels = {}): void {
    const key = this.key(labels);
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < this.buckets.length; i++) if (value <= (this.buckets[i] as number)) s.counts[i] = (s.counts[i] ?? 0) + 1;
    s.sum += value;
    s.count++;
  }

  override render(): string {
    let out = this.header('histogram');
    for (const [key, s] of this.series) {
      const prefix = key === '' ? '{' : `${key.slice(0, -1)},`;
      this.buckets.forEach((le, i) => (out += `${this.name}_bucket${prefix}le="${le}"} ${s.counts[i] ?? 0}\n`));
      out += `${this.name}_bucket${prefix}le="+Inf"} ${s.count}\n${this.name}_sum${key} ${s.sum}\n${this.name}_count${key} ${s.count}\n`;
    }
    return out;
  }
}

/** A set of metric families rendered together; registering a name twice returns the first. */
export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();

  /** The counter `name`, created on first use. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(name, () => new Counter(name, help, labelNames), Counter);
  }

  /** The gauge `name`, created on first use. */
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(name, () => new Gauge(name, help, labelNames), Gauge);
  }

  /** The histogram `name`, created on first use. */
  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram {
    return this.add(name, () => new Histogram(name, help, labelNames, buckets), Histogram);
  }

  /** Every family in the Prometheus text format. */
  render(): string {
    let out = '';
    for (const metric of this.metrics.values()) out += metric.render();
    return out;
  }

  private add<M extends Metric>(name: string, create: () => M, kind: abstract new (...args: never[]) => M): M {
    const existing = this.metrics.get(name);
    if (existing instanceof kind) return existing;
    if (existing) throw new TypeError(`metric ${name} is already registered as another type`);
    const metric = create();
    this.metrics.set(name, metric);
    return metric;
  }
}

/** Seconds buckets for request durations: 1 ms to 1 min. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * The registry's metrics. Other parts add theirs through `registry.counter(…)`; auth calls
 * `metricsOf(req)?.authFailures.inc({ reason: 'bad_password' })`.
 */
export class RegistryMetrics {
  readonly registry = new MetricsRegistry();
  readonly requests = this.registry.counter('kiln_http_requests_total', 'HTTP requests by API area (route), method and status.', ['route', 'method', 'status']);
  readonly requestBytes = this.registry.counter('kiln_http_request_bytes_total', 'Request body bytes received, by API area.', ['route']);
  readonly responseBytes = this.registry.counter('kiln_http_response_bytes_total', 'Response body bytes sent, by API area.', ['route']);
  readonly requestDuration = this.registry.histogram('kiln_http_request_duration_seconds', 'Time from request to the end of the response, by API area.', ['route'], DURATION_BUCKETS);
  readonly requestsInFlight = this.registry.gauge('kiln_http_requests_in_flight', 'Requests being served.');
  readonly uploadsInFlight = this.registry.gauge('kiln_uploads_in_flight', 'Upload requests (POST, PATCH, PUT on blobs/uploads) being received.');
  readonly uploadSessions = this.registry.gauge('kiln_upload_sessions', 'Open upload sessions (sampled when scraped).');
  readonly authFailures = this.registry.counter('kiln_auth_failures_total', 'Requests refused for missing or bad credentials or tokens, by reason.', ['reason']);
  readonly gcRuns = this.registry.counter('kiln_gc_runs_total', 'Garbage collections run by this server, by result (ok, error, skipped).', ['result']);
  readonly gcBytesFreed = this.registry.counter('kiln_gc_bytes_freed_total', 'Blob bytes deleted by garbage collection in this server.');
  readonly gcBlobsDeleted = this.registry.counter('kiln_gc_blobs_deleted_total', 'Blob files deleted by garbage collection in this server.');
  readonly gcManifestsDeleted = this.registry.counter('kiln_gc_manifests_deleted_total', 'Manifests deleted by garbage collection in this server.');
  readonly gcTagsDeleted = this.registry.counter('kiln_gc_tags_deleted_total', 'Tags deleted by retention in this server.');
  readonly gcLastSuccess = this.registry.gauge('kiln_gc_last_success_timestamp_seconds', 'When the last successful garbage collection of this server ended.');
}

const byRequest = new WeakMap<IncomingMessage, RegistryMetrics>();

/** Makes `metrics` reachable from the request (done by the app for every request). */
export function attachMetrics(req: IncomingMessage, metrics: RegistryMetrics): void {
  byRequest.set(req, metrics);
}

/** The metrics of the app serving `req` (for code that only sees the request, such as an authorizer). */
export function metricsOf(req: IncomingMessage): RegistryMetrics | undefined {
  return byRequest.get(req);
}

function escapeLabel(value: string): string {
  return /[\\"\n]/.test(value) ? value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : value;
}
