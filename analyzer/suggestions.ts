import { humanizeBytes } from './go-format.js';
import type { OverlayResult, Survivor, WasteGroup } from './overlay.js';

/** One piece of advice, tied to the layers it is about. */
export interface Suggestion {
  kind: 'delete-in-same-step' | 'overwritten-later' | 'duplicate-in-layer' | 'package-cache' | 'copy-whole-context';
  /** Layers (0-based) the advice is about: the writer first. */
  layers: number[];
  /** Bytes it would save (0 when the cost is in rebuilds, not bytes). */
  bytes: number;
  message: string;
}

/** Where package managers and tools leave caches, and how to clean them in the same RUN. */
const CACHES: ReadonlyArray<{ prefix: string; name: string; fix: string }> = [
  { prefix: '/var/lib/apt/lists/', name: 'apt lists', fix: 'rm -rf /var/lib/apt/lists/*' },
  { prefix: '/var/cache/apt/', name: 'apt cache', fix: 'apt-get clean' },
  { prefix: '/var/cache/apk/', name: 'apk cache', fix: 'apk add --no-cache' },
  { prefix: '/var/cache/yum/', name: 'yum cache', fix: 'yum clean all' },
  { prefix: '/var/cache/dnf/', name: 'dnf cache', fix: 'dnf clean all' },
  { prefix: '/root/.cache/pip/', name: 'pip cache', fix: 'pip install --no-cache-dir' },
  { prefix: '/root/.npm/', name: 'npm cache', fix: 'npm cache clean --force' },
  { prefix: '/usr/local/share/.cache/yarn/', name: 'yarn cache', fix: 'yarn cache clean' },
  { prefix: '/root/.cache/', name: 'user cache', fix: 'rm -rf /root/.cache' },
  { prefix: '/tmp/', name: 'temporary files', fix: 'remove them before the RUN ends' },
];

/** Caches smaller than this are not worth a line. */
const MIN_CACHE_BYTES = 1024;

/** `COPY . …` / `ADD . …` in a history entry (Docker and BuildKit spellings). */
const COPY_CONTEXT = /(?:^|\s)(?:COPY|ADD)\s+(?:--\S+\s+)*\.\/?\s+\S/;

/** Plain suggestions from the overlay's waste, surviving caches and the history's commands. */
export function suggest(overlay: OverlayResult, commands: readonly string[]): Suggestion[] {
  const out: Suggestion[] = [];
  const name = (l: number): string => `layer ${l + 1} (${preview(commands[l] ?? '')})`;
  for (const group of overlay.groups) {
    if (group.bytes === 0) continue;
    out.push(wasteSuggestion(group, name));
  }
  out.push(...cacheSuggestions(overlay.survivors, name));
  commands.forEach((command, l) => {
    const later = commands.length - 1 - l;
    if (!COPY_CONTEXT.test(command) || later === 0) return;
    out.push({
      kind: 'copy-whole-context',
      layers: [l],
      bytes: 0,
      message: `${name(l)} copies the whole build context: a change to any file invalidates it and the ${later} layer(s) after it; copy the dependency manifests first, install, then copy the rest (and keep a .dockerignore)`,
    });
  });
  return out.sort((a, b) => b.bytes - a.bytes);
}

function wasteSuggestion(group: WasteGroup, name: (l: number) => string): Suggestion {
  const what = `${humanizeBytes(group.bytes)} in ${group.count} file(s) written by ${name(group.writtenBy)}`;
  const example = group.examples[0] ? `, e.g. ${group.examples[0].path}` : '';
  const layers = [group.writtenBy, group.removedBy];
  if (group.kind === 'duplicate') {
    return { kind: 'duplicate-in-layer', layers, bytes: group.bytes, message: `${what} are written twice in the same layer${example}: only the last copy is visible` };
  }
  if (group.kind === 'overwritten') {
    return {
      kind: 'overwritten-later',
      layers,
      bytes: group.bytes,
      message: `${what} are overwritten by ${name(group.removedBy)}${example}: write the final version once, or do both in one step`,
    };
  }
  const how = group.kind === 'opaque' ? 'hidden by an opaque directory of' : 'deleted in';
  return {
    kind: 'delete-in-same-step',
    layers,
    bytes: group.bytes,
    message: `${what} are ${how} ${name(group.removedBy)}${example}: files deleted in a later layer still ship; delete them in the same RUN that creates them`,
  };
}

function cacheSuggestions(survivors: readonly Survivor[], name: (l: number) => string): Suggestion[] {
  const found = new Map<string, { layer: number; cache: (typeof CACHES)[number]; bytes: number; count: number }>();
  for (const s of survivors) {
    const cache = CACHES.find((c) => s.path.startsWith(c.prefix));
    if (!cache) continue;
    const key = `${s.layer}\0${cache.prefix}`;
    const hit = found.get(key) ?? { layer: s.layer, cache, bytes: 0, count: 0 };
    hit.bytes += s.size;
    hit.count++;
    found.set(key, hit);
  }
  return [...found.values()]
    .filter((h) => h.bytes >= MIN_CACHE_BYTES)
    .map((h) => ({
      kind: 'package-cache' as const,
      layers: [h.layer],
      bytes: h.bytes,
      message: `package caches left in ${name(h.layer)}: ${humanizeBytes(h.bytes)} of ${h.cache.name} in ${h.count} file(s) under ${h.cache.prefix}; clean them in the same RUN (${h.cache.fix})`,
    }));
}

/** A command shortened to one line for messages. */
export function preview(command: string, max = 60): string {
  const line = command.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
