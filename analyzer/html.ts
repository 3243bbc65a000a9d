import type { AnalysisResult } from './analyze.js';
import { goFormatFixed, humanizeBytes } from './go-format.js';
import type { CiEvaluation } from './rules.js';

// A one-page, self-contained report (no scripts, no external assets) a CI job can keep as an artifact.

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function pct(ratio: number): string {
  return Number.isFinite(ratio) ? `${goFormatFixed(ratio * 100, 2)} %` : 'n/a';
}

/** Per layer: a bar of the bytes it wrote, split into what survives and what a later layer wastes. */
function barChart(result: AnalysisResult): string {
  const max = Math.max(1, ...result.layers.map((l) => l.sizeBytes));
  const rowHeight = 26;
  const labelWidth = 70;
  const width = 640;
  const bars = result.layers.map((l, i) => {
    const y = i * rowHeight + 4;
    const kept = Math.max(0, l.sizeBytes - l.wastedBytes);
    const keptWidth = (kept / max) * width;
    const wasteWidth = (Math.min(l.wastedBytes, l.sizeBytes) / max) * width;
    const title = `layer ${i + 1}: ${humanizeBytes(l.sizeBytes)}, wasted ${humanizeBytes(l.wastedBytes)} — ${l.command}`;
    return [
      `<g><title>${escape(title)}</title>`,
      `<text x="0" y="${y + 15}" class="label">#${i + 1}</text>`,
      `<rect x="${labelWidth}" y="${y}" width="${keptWidth.toFixed(1)}" height="18" class="kept"/>`,
      `<rect x="${(labelWidth + keptWidth).toFixed(1)}" y="${y}" width="${wasteWidth.toFixed(1)}" height="18" class="waste"/>`,
      `<text x="${(labelWidth + keptWidth + wasteWidth + 6).toFixed(1)}" y="${y + 15}" class="label">${escape(humanizeBytes(l.sizeBytes))}</text></g>`,
    ].join('');
  });
  const height = result.layers.length * rowHeight + 8;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${labelWidth + width + 90}" height="${height}" role="img" aria-label="bytes per layer">${bars.join('')}</svg>`;
}

/** The HTML report: figures, the per-layer chart and table, dive's inefficient files and the suggestions. */
export function formatHtmlReport(result: AnalysisResult, ci?: CiEvaluation): string {
  const { dive, corrected } = result;
  const rows = result.layers
    .map(
      (l) =>
        `<tr><td>${l.index + 1}</td><td>${humanizeBytes(l.sizeBytes)}</td><td>${l.added.count} / ${humanizeBytes(l.added.bytes)}</td>` +
        `<td>${l.changed.count} / ${humanizeBytes(l.changed.bytes)}</td><td>${l.deleted.count} / ${humanizeBytes(l.deleted.bytes)}</td>` +
        `<td>${humanizeBytes(l.wastedBytes)}</td><td><code>${escape(l.command)}</code></td></tr>`,
    )
    .join('\n');
  const files = dive.inefficientFiles
    .slice(0, 50)
    .map((f) => `<tr><td>${f.count}</td><td>${humanizeBytes(f.sizeBytes)}</td><td><code>${escape(f.path)}</code></td></tr>`)
    .join('\n');
  const suggestions = result.suggestions.map((s) => `<li>${escape(s.message)}</li>`).join('\n');
  const gate = ci
    ? `<p class="${ci.pass ? 'pass' : 'fail'}">CI gate: ${ci.misconfigured ? 'misconfigured' : ci.pass ? 'PASS' : 'FAIL'} — ${ci.rules
        .map((r) => `${escape(r.key)} ${r.status}`)
        .join(', ')}</p>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kiln analyze: ${escape(result.image.name)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}code{font-size:12px}
.kept{fill:#4a90d9}.waste{fill:#d9534f}.label{font-size:12px;fill:#333}.pass{color:#2a7a2a}.fail{color:#b22}
</style></head><body>
<h1>${escape(result.image.name)}</h1>
<p><code>${escape(result.image.digest)}</code> (${escape(result.image.platform)}), ${result.layers.length} layers, ${humanizeBytes(dive.sizeBytes)}</p>
${gate}
<table><tr><th></th><th>efficiency</th><th>wasted</th><th>user wasted</th></tr>
<tr><td>dive</td><td>${pct(dive.efficiency)}</td><td>${humanizeBytes(dive.wastedBytes)}</td><td>${pct(dive.userWastedPercent)}</td></tr>
<tr><td>corrected (overlay)</td><td>${pct(corrected.efficiency)}</td><td>${humanizeBytes(corrected.wastedBytes)}</td><td>${pct(corrected.userWastedPercent)}</td></tr></table>
<h2>Bytes per layer</h2><p><span style="color:#4a90d9">■</span> survives <span style="color:#d9534f">■</span> wasted by a later layer</p>
${barChart(result)}
<table><tr><th>#</th><th>size</th><th>added</th><th>changed</th><th>deleted</th><th>wasted</th><th>command</th></tr>
${rows}</table>
<h2>Suggestions</h2><ul>${suggestions || '<li>none</li>'}</ul>
<h2>Inefficient files (dive)</h2>
<table><tr><th>count</th><th>wasted</th><th>path</th></tr>${files || '<tr><td colspan="3">none</td></tr>'}</table>
</body></html>
`;
}
