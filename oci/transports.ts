import { isLocalSpec } from './archive/local-spec.js';
import type { ArchiveLimits } from './archive/tar-reader.js';
import { openRegistryTarget } from './client/registry-target.js';
import { KilnError } from './errors.js';
import type { LayoutMode } from './layout/oci-layout.js';
import { parseReference, parseRepository } from './reference.js';
import type { Target } from './target.js';

/** Options of `openTarget`. */
export interface OpenTargetOptions {
  mode: LayoutMode;
  /** Registry access: `--authfile`, `--insecure`. */
  registry?: { authfile?: string | undefined; insecure?: boolean | undefined };
  /** The spec names a repository, not an image (`kiln tags`): a tag or digest is an error. */
  repositoryOnly?: boolean;
  tmpDir?: string;
  limits?: Partial<ArchiveLimits>;
}

/** containers-transports(5) names Kiln does not read: named so the error is not "invalid reference". */
const OTHER_TRANSPORTS = ['containers-storage', 'dir', 'docker-daemon', 'ostree', 'sif', 'tarball'];

/**
 * Opens any image location by its skopeo-style name: `oci:DIR[:tag]`, `oci-archive:FILE[:tag]`,
 * `docker-archive:FILE[:ref]`, `docker://REF` or a bare registry reference.
 */
export async function openTarget(spec: string, options: OpenTargetOptions): Promise<Target> {
  if (isLocalSpec(spec)) {
    // Loaded on demand: the archive code (tar-stream, zstd) costs a registry-only command (verify, sign) its startup.
    const { openLocalTarget } = await import('./archive/open.js');
    return openLocalTarget(spec, { mode: options.mode, tmpDir: options.tmpDir, limits: options.limits });
  }
  let refText = spec;
  if (spec.startsWith('docker://')) refText = spec.slice('docker://'.length);
  else {
    const scheme = /^([a-z][a-z0-9-]*):/.exec(spec)?.[1];
    if (scheme && OTHER_TRANSPORTS.includes(scheme)) {
      throw new KilnError('UNSUPPORTED_TRANSPORT', `unsupported transport "${scheme}:" in "${spec}"`, {
        hint: 'use oci:DIR[:tag], oci-archive:FILE[:tag], docker-archive:FILE[:ref], docker://REF or a registry reference',
      });
    }
  }
  const reference = options.repositoryOnly ? { ...parseRepository(refText) } : parseReference(refText);
  return openRegistryTarget(reference, {
    authfile: options.registry?.authfile,
    insecure: options.registry?.insecure,
  });
}
