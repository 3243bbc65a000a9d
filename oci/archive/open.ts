import { KilnError } from '../errors.js';
import { openOciLayout, parseLayoutSpec } from '../layout/layout-target.js';
import type { LayoutMode } from '../layout/oci-layout.js';
import type { Target } from '../target.js';
import type { ArchiveLimits } from './tar-reader.js';

/** Options of `openLocalTarget`. */
export interface OpenLocalTargetOptions {
  mode: LayoutMode;
  /** Parent of archives' private work directories; default os.tmpdir(). */
  tmpDir?: string | undefined;
  limits?: Partial<ArchiveLimits> | undefined;
}

export { isLocalSpec, LOCAL_TRANSPORTS } from './local-spec.js';

/**
 * Opens `oci:DIR[:tag]`, `oci-archive:FILE[:tag]` or `docker-archive:FILE[:ref]` as a `Target`;
 * the path ends at the first `:` after the transport, as in skopeo. The archive code (tar-stream, zstd) loads only
 * for an archive: a layout directory needs none of it.
 */
export async function openLocalTarget(spec: string, options: OpenLocalTargetOptions): Promise<Target> {
  const colon = spec.indexOf(':');
  const transport = colon < 0 ? spec : spec.slice(0, colon);
  const rest = spec.slice(colon + 1);
  switch (transport) {
    case 'oci': {
      const { path, ref } = parseLayoutSpec(rest);
      return openOciLayout({ dir: path, ref, mode: options.mode });
    }
    case 'oci-archive': {
      const { path, ref } = parseLayoutSpec(rest);
      const { openOciArchive } = await import('./oci-archive.js');
      return openOciArchive({ file: path, ref, mode: options.mode, tmpDir: options.tmpDir, limits: options.limits });
    }
    case 'docker-archive': {
      const sep = rest.indexOf(':');
      const file = sep < 0 ? rest : rest.slice(0, sep);
      const ref = sep < 0 ? undefined : rest.slice(sep + 1);
      if (file === '') throw new KilnError('USAGE', `"${spec}" names no file; use docker-archive:FILE[:name:tag]`);
      const { openDockerArchive } = await import('./docker-archive.js');
      return openDockerArchive({ file, ref: ref === '' ? undefined : ref, mode: options.mode, tmpDir: options.tmpDir, limits: options.limits });
    }
    default:
      throw new KilnError('UNSUPPORTED_TRANSPORT', `unknown transport in "${spec}": use oci:, oci-archive: or docker-archive:`);
  }
}
