import { describe, expect, it } from 'vitest';
import { MetricsRegistry, RegistryMetrics } from '../../../registry/observability/metrics.js';

describe('Prometheus text format', () => {
  it('renders counters, gauges and histograms with escaped labels; re-registering returns the same metric', () => {
    const registry = new MetricsRegistry();
    const c = registry.counter('x_total', 'Things\nseen.', ['kind']);
    c.inc({ kind: 'a"b\\c\nd' });
    c.inc({ kind: 'a"b\\c\nd' }, 2);
    c.inc();
    expect(registry.counter('x_total', 'ignored', ['kind'])).toBe(c);
    expect(() => registry.gauge('x_total', 'clash')).toThrow(/already registered/);
    registry.gauge('g', 'A gauge.').set(-1.5);
    const h = registry.histogram('d_seconds', 'Durations.', ['route'], [0.1, 1]);
    h.observe(0.05, { route: 'r' });
    h.observe(0.5, { route: 'r' });
    h.observe(5, { route: 'r' });
    expect(registry.render()).toBe(
      [
        '# HELP x_total Things\\nseen.',
        '# TYPE x_total counter',
        'x_total{kind="a\\"b\\\\c\\nd"} 3',
        'x_total{kind=""} 1',
        '# HELP g A gauge.',
        '# TYPE g gauge',
        'g -1.5',
        '# HELP d_seconds Durations.',
        '# TYPE d_seconds histogram',
        'd_seconds_bucket{route="r",le="0.1"} 1',
        'd_seconds_bucket{route="r",le="1"} 2',
        'd_seconds_bucket{route="r",le="+Inf"} 3',
        'd_seconds_sum{route="r"} 5.55',
        'd_seconds_count{route="r"} 3',
        '',
      ].join('\n'),
    );
  });

  it('exposes unlabelled series at 0 before anything happened', () => {
    const text = new RegistryMetrics().registry.render();
    expect(text).toMatch(/^kiln_gc_bytes_freed_total 0$/m);
    expect(text).toMatch(/^kiln_uploads_in_flight 0$/m);
    expect(text).toContain('# TYPE kiln_auth_failures_total counter');
  });
});
