import { copyImage } from '../oci/copy.js';
import type { Digest } from '../oci/digest.js';
import { KilnError } from '../oci/errors.js';
import { openTarget } from '../oci/transports.js';
import type { LocalStore } from '../builder/store/local-store.js';
import type { BuildOutput } from './build-flags.js';
import { printMessage } from './output.js';

/** Options of `exportImage`. */
export interface ExportOptions {
  store: LocalStore;
  digest: Digest;
  /** The image's -t names, normalised. */
  names: string[];
  outputs: BuildOutput[];
  registry: { authfile?: string | undefined; insecure?: boolean | undefined };
  quiet: boolean;
}

/** Copies a built image from the local store to every `--output` (and `--push` name), each verified on the way. */
export async function exportImage(options: ExportOptions): Promise<void> {
  const source = options.store.target({ digest: options.digest });
  const firstTag = options.names[0];
  for (const output of options.outputs) {
    const specs: string[] = [];
    switch (output.type) {
      case 'registry':
        if (output.name !== undefined) specs.push(...output.name.split(','));
        else specs.push(...options.names);
        break;
      case 'oci':
        specs.push(output.tar ? `oci-archive:${output.dest}${tagSuffix(firstTag)}` : `oci:${output.dest}${tagSuffix(firstTag)}`);
        break;
      case 'oci-archive':
        specs.push(`oci-archive:${output.dest}${tagSuffix(firstTag)}`);
        break;
      case 'docker-archive':
        specs.push(`docker-archive:${output.dest}${firstTag ? `:${firstTag}` : ''}`);
        break;
      case 'local-store':
        break;
    }
    for (const spec of specs) {
      const target = await openTarget(spec, { mode: 'write', registry: options.registry });
      try {
        await copyImage({ source, destination: target });
        await target.close();
      } catch (err) {
        await target.close({ discard: true }).catch(() => undefined);
        throw err instanceof KilnError ? err : new KilnError('BUILD_FAILED', `exporting to ${spec} failed: ${String(err)}`, { cause: err });
      }
      if (!options.quiet) printMessage(`kiln: exported ${options.digest} to ${target.description}`);
    }
  }
}

/** An OCI layout ref name for the first tag: its tag part (`app:1` → `:1`), as buildx names the image in index.json. */
function tagSuffix(name: string | undefined): string {
  if (!name) return '';
  const at = name.lastIndexOf(':');
  return at > name.lastIndexOf('/') ? `:${name.slice(at + 1)}` : '';
}
