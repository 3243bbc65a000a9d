import type { Command } from 'commander';
import { inspectImage, type ImageSummary } from '../../oci/inspect.js';
import { openTarget } from '../../oci/transports.js';
import { addFormatFlag, addRegistryFlags, platformFlag, type RegistryFlags } from '../common.js';
import { formatBytes, printJson, printResult } from '../output.js';

interface InspectFlags extends RegistryFlags {
  raw?: boolean;
  platform?: string;
  format: string;
}

/** `kiln inspect REF`. */
export function registerInspect(program: Command): void {
  const cmd = program
    .command('inspect')
    .argument('<image>', 'image reference or transport (oci:DIR[:tag], oci-archive:FILE, docker-archive:FILE, REF)')
    .description('show an image\'s manifest, config, layers, sizes and platforms')
    .option('--raw', 'print the exact manifest bytes as stored')
    .option('--platform <os/arch[/variant]>', 'inspect this platform\'s manifest of an index');
  addRegistryFlags(cmd);
  addFormatFlag(cmd);
  cmd.action(async (image: string, flags: InspectFlags) => {
    const target = await openTarget(image, { mode: 'read', registry: { authfile: flags.authfile, insecure: flags.insecure } });
    try {
      const { summary, manifest } = await inspectImage({ target, platform: platformFlag(flags.platform) });
      if (flags.raw) process.stdout.write(manifest.bytes);
      else if (flags.format === 'json') printJson(summary);
      else printResult(renderSummary(summary));
    } finally {
      await target.close();
    }
  });
}

function renderSummary(s: ImageSummary): string {
  const lines = [`Name:       ${s.name}`, `Digest:     ${s.digest}`, `MediaType:  ${s.mediaType}`];
  if (s.platforms) {
    lines.push('Platforms:');
    for (const p of s.platforms) lines.push(`  ${p.platform.padEnd(16)} ${p.digest}  ${formatBytes(p.size)}`);
    return lines.join('\n');
  }
  if (s.os) lines.push(`Platform:   ${s.os}/${s.architecture}${s.variant ? `/${s.variant}` : ''}`);
  if (s.created) lines.push(`Created:    ${s.created}`);
  if (s.config) lines.push(`Config:     ${s.config.digest}  ${formatBytes(s.config.size)}`);
  if (s.entrypoint) lines.push(`Entrypoint: ${JSON.stringify(s.entrypoint)}`);
  if (s.cmd) lines.push(`Cmd:        ${JSON.stringify(s.cmd)}`);
  for (const [k, v] of Object.entries(s.labels ?? {})) lines.push(`Label:      ${k}=${v}`);
  lines.push(`Layers:     ${s.layers?.length ?? 0}`);
  for (const l of s.layers ?? []) lines.push(`  ${l.digest}  ${formatBytes(l.size).padStart(10)}  ${l.mediaType}`);
  if (s.totalSize !== undefined) lines.push(`Size:       ${formatBytes(s.totalSize)} (${s.totalSize} bytes, compressed)`);
  return lines.join('\n');
}
