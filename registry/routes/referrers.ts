import type { Descriptor } from '../../oci/descriptor.js';
import { type Digest, digestAlgorithm, digestHex } from '../../oci/digest.js';
import { isKilnError } from '../../oci/errors.js';
import { parseManifest } from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';
import type { AreaRoutes, RouteContext } from '../context.js';
import { checkDigest } from '../routing.js';

/**
 * `GET /v2/<name>/referrers/<digest>` (distribution-spec § Listing Referrers): always 200 with an
 * OCI index (MUST NOT 404, even for unknown subjects or repositories), `artifactType` filter
 * reported in `OCI-Filters-Applied`, entries of a pre-existing tag-schema index folded in
 * (§ Enabling the Referrers API).
 */
export const referrersRoutes: AreaRoutes<'referrers'> = {
  GET: {
    actions: ['pull'],
    handle: async (ctx, route) => {
      const subject = checkDigest(route.digest, 'subject digest');
      const artifactType = ctx.url.searchParams.get('artifactType') || undefined;
      const listed = await ctx.metadata.listReferrers(route.name, subject, artifactType);
      const seen = new Set(listed.map((d) => d.digest));
      const folded = (await tagSchemaEntries(ctx, route.name, subject)).filter(
        (d) => !seen.has(d.digest) && (artifactType === undefined || d.artifactType === artifactType),
      );
      const index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [...listed, ...folded] };
      const body = Buffer.from(JSON.stringify(index));
      if (artifactType !== undefined) ctx.res.setHeader('OCI-Filters-Applied', 'artifactType');
      ctx.res.status(200);
      // Exactly the index type, without parameters: the conformance suite compares the header verbatim.
      ctx.res.setHeader('Content-Type', MediaType.OciIndex);
      ctx.res.setHeader('Content-Length', String(body.length));
      ctx.res.end(body);
    },
  },
};

/** Entries of the index tagged `<alg>-<hex, at most 64 chars>` (§ Referrers Tag Schema), when there is one. */
async function tagSchemaEntries(ctx: RouteContext, repository: string, subject: Digest): Promise<Descriptor[]> {
  const tag = `${digestAlgorithm(subject)}-${digestHex(subject).slice(0, 64)}`;
  const digest = await ctx.metadata.resolveTag(repository, tag);
  const record = digest === undefined ? undefined : await ctx.metadata.getManifest(repository, digest);
  if (!record) return [];
  try {
    const raw = parseManifest(record.bytes, record.mediaType);
    return raw.kind === 'index' ? raw.parsed.manifests : [];
  } catch (err) {
    // Stored manifests were validated on push; one that no longer parses is only skipped here, and logged.
    if (!isKilnError(err, 'MANIFEST_INVALID')) throw err;
    ctx.logger.warn({ repository, tag, err }, 'referrers tag-schema index is not a valid index');
    return [];
  }
}
