import { errorMessage, isKilnError, KilnError } from '../oci/errors.js';
import { formatReference, formatRepository, parseReference, parseRepository, type ImageReference } from '../oci/reference.js';
import type { SignedIdentity } from './policy.js';
import type { IdentityMatcher } from './verify.js';

/** A reference as written: tag and digest only when present (no default `latest`). */
export function parseAsWritten(text: string): ImageReference {
  try {
    return parseRepository(text);
  } catch (err) {
    // parseRepository refuses a tag or digest; anything else it refuses, parseReference refuses too.
    if (!isKilnError(err, 'REFERENCE_INVALID')) throw err;
    return parseReference(text);
  }
}

/** The identity matcher of a signedIdentity rule for a registry image, and the repository the signatures must name. */
export function identityRule(rule: SignedIdentity, image: ImageReference | undefined): { match: IdentityMatcher; repository: string } {
  const target = expectedIdentity(rule, image);
  const repository = formatRepository(target.reference);
  const expected = formatReference(target.reference);
  const match: IdentityMatcher = (dockerReference) => {
    let signed: ImageReference;
    try {
      signed = parseAsWritten(dockerReference);
    } catch (err) {
      return { ok: false, detail: `docker-reference ${JSON.stringify(dockerReference)} is not a reference: ${errorMessage(err)}` };
    }
    const signedText = formatReference(signed);
    const sameRepository = formatRepository(signed) === repository;
    const exact = signedText === expected;
    const ok = target.mode === 'repository' ? sameRepository : exact;
    const wanted = target.mode === 'repository' ? `repository ${repository}` : `exactly ${expected}`;
    return { ok, detail: `signed for ${signedText}; ${rule.type} wants ${wanted}` };
  };
  return { match, repository };
}

/** What a rule compares the signature with: a reference, as a whole or by repository (containers-policy.json § signedIdentity). */
function expectedIdentity(rule: SignedIdentity, image: ImageReference | undefined): { reference: ImageReference; mode: 'exact' | 'repository' } {
  const needImage = (): ImageReference => {
    if (image) return image;
    throw new KilnError('POLICY_INVALID', `signedIdentity ${rule.type} needs a registry image; oci: images can only use exactReference or exactRepository`);
  };
  switch (rule.type) {
    case 'matchExact':
      return { reference: needImage(), mode: 'exact' };
    case 'matchRepoDigestOrExact':
      return repoDigestOrExact(needImage());
    case 'matchRepository':
      return { reference: needImage(), mode: 'repository' };
    case 'exactReference':
      return { reference: parsePolicyReference(rule.dockerReference, 'dockerReference'), mode: 'exact' };
    case 'exactRepository':
      return { reference: parsePolicyRepository(rule.dockerRepository, 'dockerRepository'), mode: 'repository' };
    case 'remapIdentity':
      return repoDigestOrExact(remap(needImage(), rule.prefix, rule.signedPrefix));
  }
}

/** A digest reference needs the repository only; a tagged one the exact reference. */
function repoDigestOrExact(image: ImageReference): { reference: ImageReference; mode: 'exact' | 'repository' } {
  return { reference: image, mode: image.digest !== undefined ? 'repository' : 'exact' };
}

/** Replaces `prefix` (a host, namespace or repository, matched at a path boundary) by `signedPrefix`. */
function remap(image: ImageReference, prefix: string, signedPrefix: string): ImageReference {
  const repo = formatRepository(image);
  if (repo !== prefix && !repo.startsWith(`${prefix}/`)) return image;
  const remapped = parseRepository(`${signedPrefix}${repo.slice(prefix.length)}`);
  return { ...remapped, ...(image.tag !== undefined ? { tag: image.tag } : {}), ...(image.digest !== undefined ? { digest: image.digest } : {}) };
}

function parsePolicyReference(text: string, field: string): ImageReference {
  try {
    return parseAsWritten(text);
  } catch (err) {
    throw new KilnError('POLICY_INVALID', `signedIdentity.${field} ${JSON.stringify(text)}: ${errorMessage(err)}`, { cause: err });
  }
}

function parsePolicyRepository(text: string, field: string): ImageReference {
  try {
    return parseRepository(text);
  } catch (err) {
    throw new KilnError('POLICY_INVALID', `signedIdentity.${field} ${JSON.stringify(text)}: ${errorMessage(err)}`, { cause: err });
  }
}
