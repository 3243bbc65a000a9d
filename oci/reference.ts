// STUB: replaced by the full implementation (distribution/reference grammar).
import type { Digest } from './digest.js';
import { KilnError } from './errors.js';

/** A normalised image reference: `registry/repository[:tag][@digest]`. */
export interface ImageReference {
  /** Registry host[:port], `docker.io` for Docker Hub. */
  registry: string;
  /** Repository path, `library/alpine` for official images. */
  repository: string;
  tag?: string | undefined;
  digest?: Digest | undefined;
}

export function parseReference(input: string): ImageReference {
  throw new KilnError('REFERENCE_INVALID', `not implemented: ${input}`);
}

export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}
