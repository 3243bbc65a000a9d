import type { Command } from 'commander';
import { MAX_CONFIG_BYTES, parseImageConfig } from '../../oci/config.js';
import { copyImage } from '../../oci/copy.js';
import { familiarString, parseReference } from '../../oci/reference.js';
import { readStreamLimited } from '../../oci/stream-util.js';
import { openTarget } from '../../oci/transports.js';
import { LocalStore } from '../../builder/store/local-store.js';
import { prune } from '../../builder/store/prune.js';
import { addFormatFlag, addRegistryFlags, platformFlag, type RegistryFlags } from '../common.js';
import { formatBytes, outputSettings, printJson, printMessage, printResult } from '../output.js';
import { createProgress } from '../progress.js';

const STORE_HELP = `
Images live in Kiln's local store: $KILN_DATA_DIR, else $XDG_DATA_HOME/kiln, else ~/.local/share/kiln.`;

interface ListedImage {
  name: string;
  repository: string;
  tag: string;
  id: string;
  digest: string;
  created?: string | undefined;
  size: number;
}

/** `kiln images`, `kiln pull`, `kiln push`, `kiln rmi`, `kiln prune`: the local image store, as docker/podman name them. */
export function registerImageStore(program: Command): void {
  const images = program.command('images').description('list the images in the local store').option('-q, --quiet', 'print image IDs only');
  addFormatFlag(images).addHelpText('after', STORE_HELP);
  images.action(async (flags: { quiet?: boolean; format: string }) => {
    const store = await LocalStore.open();
    try {
      const rows = await listImages(store);
      if (flags.format === 'json') printJson(rows);
      else if (flags.quiet) printResult([...new Set(rows.map((r) => r.id))].join('\n'));
      else printResult(formatTable(rows));
    } finally {
      await store.close();
    }
  });

  const pull = program
    .command('pull')
    .argument('<reference>', 'image to fetch, e.g. localhost:5000/app:1')
    .description('copy an image from a registry into the local store')
    .option('--platform <os/arch[/variant]>', 'platform to take out of an index (default: every platform)')
    .option('-q, --quiet', 'no progress output');
  addRegistryFlags(pull).addHelpText('after', STORE_HELP);
  pull.action(async (reference: string, flags: RegistryFlags & { platform?: string; quiet?: boolean }) => {
    const settings = outputSettings({ quiet: flags.quiet });
    const store = await LocalStore.open();
    const source = await openTarget(reference, { mode: 'read', registry: flags });
    try {
      const name = familiarName(reference);
      const progress = createProgress(settings);
      try {
        const result = await copyImage({
          source,
          destination: store.target(),
          platform: platformFlag(flags.platform),
          tag: storeName(reference),
          onProgress: settings.quiet ? undefined : (e) => progress.onEvent(e),
        });
        progress.finish();
        printMessage(`kiln: pulled ${name}`);
        printResult(result.digest);
      } catch (err) {
        progress.finish();
        throw err;
      }
    } finally {
      await source.close();
      await store.close();
    }
  });

  const push = program
    .command('push')
    .argument('<image>', 'image in the local store (name or ID)')
    .argument('[destination]', 'where to push (default: the image name); any transport copy takes, e.g. oci:DIR')
    .description('copy an image from the local store to a registry (what CI runs after `kiln build -t`)')
    .option('-q, --quiet', 'no progress output');
  addRegistryFlags(push);
  addFormatFlag(push).addHelpText('after', STORE_HELP);
  push.action(async (image: string, destination: string | undefined, flags: RegistryFlags & { quiet?: boolean; format: string }) => {
    const settings = outputSettings({ quiet: flags.quiet, format: flags.format });
    const store = await LocalStore.open();
    try {
      const found = await store.find(image);
      const dest = destination ?? found.name;
      const target = await openTarget(dest, { mode: 'write', registry: flags });
      const progress = createProgress(settings);
      try {
        const result = await copyImage({
          source: store.target({ digest: found.descriptor.digest }),
          destination: target,
          onProgress: settings.quiet ? undefined : (e) => progress.onEvent(e),
        });
        await target.close();
        progress.finish();
        if (settings.json) printJson({ image: found.name, destination: target.description, ...result });
        else printResult(result.digest);
      } catch (err) {
        progress.finish();
        await target.close({ discard: true }).catch(() => undefined);
        throw err;
      }
    } finally {
      await store.close();
    }
  });

  program
    .command('rmi')
    .argument('<images...>', 'names (or IDs) of images in the local store')
    .description('remove image names from the local store (blobs are freed by `kiln prune`)')
    .addHelpText('after', STORE_HELP)
    .action(async (names: string[]) => {
      const store = await LocalStore.open();
      try {
        for (const name of names) {
          const found = await store.find(name);
          await store.untag(found.name);
          printResult(`Untagged: ${found.name}`);
        }
      } finally {
        await store.close();
      }
    });

  program
    .command('prune')
    .description('clear the build cache (unpacked base images included) and delete blobs no image in the local store uses')
    .addHelpText('after', STORE_HELP)
    .action(async () => {
      const store = await LocalStore.open();
      try {
        const result = await prune(store);
        printResult(`Deleted ${result.cacheEntries} cache entries and ${result.blobs} blobs; reclaimed ${formatBytes(result.bytes)}`);
      } finally {
        await store.close();
      }
    });
}

/** The store's name for a pulled reference: normalised, tag kept, digest-only references by digest. */
function storeName(reference: string): string {
  const ref = parseReference(reference);
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : `@${ref.digest ?? ''}`}`;
}

function familiarName(reference: string): string {
  try {
    return familiarString(parseReference(reference));
  } catch {
    return reference;
  }
}

async function listImages(store: LocalStore): Promise<ListedImage[]> {
  const rows: ListedImage[] = [];
  for (const { name, descriptor } of await store.images()) {
    // Base images the builder cached (`<ref>+<platform>`) are build cache, not the user's images.
    if (name.includes('+')) continue;
    const raw = await store.layout.getManifest(descriptor.digest, descriptor.mediaType);
    let size = raw.bytes.length;
    let created: string | undefined;
    let id = descriptor.digest;
    if (raw.kind === 'manifest') {
      const config = raw.parsed.config;
      id = config.digest;
      size += config.size + raw.parsed.layers.reduce((n, l) => n + l.size, 0);
      const bytes = await readStreamLimited(await store.layout.blobs.get(config.digest), MAX_CONFIG_BYTES, `config ${config.digest}`);
      created = parseImageConfig(bytes, `config ${config.digest}`).created;
    }
    const ref = parseReference(name);
    rows.push({
      name,
      repository: familiarString({ ...ref, tag: undefined, digest: undefined }),
      tag: ref.tag ?? '<none>',
      id: id.slice('sha256:'.length, 'sha256:'.length + 12),
      digest: descriptor.digest,
      created,
      size,
    });
  }
  return rows;
}

function formatTable(rows: ListedImage[]): string {
  const table = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], ...rows.map((r) => [r.repository, r.tag, r.id, r.created ?? '', formatBytes(r.size)])];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => (row[i] ?? '').length)));
  return table.map((row) => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('   ').trimEnd()).join('\n');
}
