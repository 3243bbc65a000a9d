import type { Command } from 'commander';
import { copyImage } from '../../oci/copy.js';
import { openTarget } from '../../oci/transports.js';
import { TAG_STATE_TAG } from '../../signer/tag-state-tag.js';
import { addFormatFlag, addRegistryFlags, platformFlag, type RegistryFlags } from '../common.js';
import { outputSettings, printJson, printResult } from '../output.js';
import { createProgress } from '../progress.js';

interface CopyFlags extends RegistryFlags {
  platform?: string;
  withReferrers?: boolean;
  concurrency: string;
  format: string;
  quiet?: boolean;
}

/** `kiln copy SRC DST`. */
export function registerCopy(program: Command): void {
  const cmd = program
    .command('copy')
    .alias('cp')
    .argument('<source>', 'image to copy')
    .argument('<destination>', 'where to copy it')
    .description('copy an image (all platforms of an index by default) between registries, OCI layouts and archives')
    .option('--platform <os/arch[/variant]>', 'copy only this platform out of an index')
    .option('--with-referrers', `also copy signatures, attestations and other referrers, and the repository's signed tag state (${TAG_STATE_TAG})`)
    .option('-j, --concurrency <n>', 'blobs transferred in parallel', '4')
    .option('-q, --quiet', 'no progress output');
  addRegistryFlags(cmd);
  addFormatFlag(cmd);
  cmd.addHelpText(
    'after',
    `
Transports (as skopeo names them):
  oci:DIR[:tag]              OCI image layout directory
  oci-archive:FILE[:tag]     tar of an OCI image layout
  docker-archive:FILE[:ref]  docker save / docker load format (one image)
  docker://REF or REF        registry, e.g. localhost:5000/app:1 or ghcr.io/o/a@sha256:…

--with-referrers copies referrers (OCI 1.1 subject links, with the tag-schema fallback), cosign's
sha256-<hex>.sig/.att/.sbom tags and, when a tag is copied, the repository's kiln-tag-state (replacing the destination's):
a signed tag copied elsewhere still verifies there with its tag binding, as a mirror of the original
(kiln verify --identity ORIGINAL-REPOSITORY).

Examples:
  kiln copy oci:./out:1.0 localhost:5000/app:1.0
  kiln copy --with-referrers localhost:5000/app:1.0 mirror.example/app:1.0
  kiln copy --platform linux/arm64 docker://registry.example/app:1 oci-archive:app.tar`,
  );
  cmd.action(async (src: string, dst: string, flags: CopyFlags) => {
    const settings = outputSettings({ format: flags.format, quiet: flags.quiet });
    const platform = platformFlag(flags.platform);
    const registry = { authfile: flags.authfile, insecure: flags.insecure };
    const source = await openTarget(src, { mode: 'read', registry });
    try {
      const destination = await openTarget(dst, { mode: 'write', registry });
      const progress = createProgress(settings);
      try {
        const result = await copyImage({
          source,
          destination,
          platform,
          withReferrers: flags.withReferrers,
          // The signer's tag state binds tags to digests: without it a copied signed tag verifies only with
          // --no-tag-binding. Only a copy of a tag carries it (a copy by digest has no tag to bind).
          extraTags: flags.withReferrers && source.ref.digest === undefined ? [TAG_STATE_TAG] : [],
          concurrency: Number.parseInt(flags.concurrency, 10),
          onProgress: settings.quiet ? undefined : (e) => progress.onEvent(e),
        });
        await destination.close();
        progress.finish();
        if (settings.json) printJson({ source: source.description, destination: destination.description, ...result });
        else printResult(result.digest);
      } catch (err) {
        progress.finish();
        await destination.close({ discard: true }).catch(() => undefined);
        throw err;
      }
    } finally {
      await source.close();
    }
  });
}
