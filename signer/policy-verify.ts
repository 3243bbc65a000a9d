import { isKilnError, errorMessage } from '../oci/errors.js';
import { parseLayoutSpec } from '../oci/layout/layout-target.js';
import { parseReference, type ImageReference } from '../oci/reference.js';
import type { Target } from '../oci/target.js';
import { isManifestAbsent } from './attach.js';
import { readKeyFile } from './key-files.js';
import { loadPublicKey, type PublicKey } from './keys.js';
import { withValidity } from './key-validity.js';
import { dockerScopes, ociScopes, requirementsFor, type Policy, type PolicyKey, type PolicyRequirement } from './policy.js';
import { identityRule } from './policy-identity.js';
import type { TrustCache } from './trust-cache.js';
import { verifyImage, type VerifyFailure, type VerifyReport } from './verify-image.js';

/** Where an image lives, as the policy's transports and scopes name it. */
export type PolicyImage =
  | { transport: 'docker'; reference: ImageReference }
  | { transport: 'oci'; dir: string; tag: string | undefined }
  | { transport: string };

/** One requirement's outcome; `report` carries the signature checks of a sigstoreSigned requirement. */
export interface RequirementResult {
  type: string;
  ok: boolean;
  detail: string;
  report?: VerifyReport;
}

/** The outcome of `verifyWithPolicy`: the scope that chose the requirements and each one's result. */
export interface PolicyReport {
  ok: boolean;
  image: string;
  policy: string;
  scope: string;
  requirements: RequirementResult[];
  failure?: VerifyFailure;
}

/** The transport and scope form of an image spec, as `openTarget` reads it (skopeo's transport names). */
export function policyImageOf(spec: string): PolicyImage {
  if (spec.startsWith('oci:')) {
    const { path, ref } = parseLayoutSpec(spec.slice('oci:'.length));
    return { transport: 'oci', dir: path, tag: ref.tag };
  }
  const scheme = /^([a-z][a-z0-9-]*):(?!\d)/.exec(spec)?.[1];
  if (scheme !== undefined && scheme !== 'docker') return { transport: scheme };
  return { transport: 'docker', reference: parseReference(spec.startsWith('docker://') ? spec.slice('docker://'.length) : spec) };
}

/**
 * Evaluates `policy` for the image `target` names (`image` says where, for scope lookup): every
 * requirement of the most specific scope must hold. sigstoreSigned runs `verifyImage` with its keys
 * and signedIdentity; reject and requirements Kiln cannot evaluate fail closed.
 */
export async function verifyWithPolicy(options: {
  target: Target;
  image: PolicyImage;
  policy: Policy;
  trustCache: TrustCache;
  tagBinding?: boolean;
  maxAgeSeconds?: number;
  now?: Date;
}): Promise<PolicyReport> {
  const { image, policy, target } = options;
  const scopes = image.transport === 'docker' && 'reference' in image ? dockerScopes(image.reference) : 'dir' in image ? ociScopes(image.dir, image.tag) : [];
  const { scope, requirements } = requirementsFor(policy, image.transport, scopes);
  const report: PolicyReport = { ok: false, image: target.description, policy: policy.source, scope, requirements: [] };
  try {
    await target.resolve();
  } catch (err) {
    if (!isManifestAbsent(err)) throw err;
    report.failure = { code: 'TAG_NOT_FOUND', message: `${target.description}: no such ${target.ref.digest === undefined ? 'tag' : 'image'}` };
    return report;
  }
  for (const requirement of requirements) {
    const result = await evaluate(requirement, options);
    report.requirements.push(result);
    if (!result.ok) {
      const code = result.report?.failure?.code ?? 'SIGNATURE_MISMATCH';
      report.failure = { code, message: `${target.description} rejected by ${policy.source} (scope ${JSON.stringify(scope)}): ${result.detail}` };
      return report;
    }
  }
  report.ok = true;
  return report;
}

async function evaluate(requirement: PolicyRequirement, options: Parameters<typeof verifyWithPolicy>[0]): Promise<RequirementResult> {
  switch (requirement.type) {
    case 'insecureAcceptAnything':
      return { type: requirement.type, ok: true, detail: 'accepted without verification' };
    case 'reject':
      return { type: requirement.type, ok: false, detail: 'the policy rejects every image here (reject)' };
    case 'unsupported':
      return { type: requirement.name, ok: false, detail: `cannot be evaluated, so it rejects: ${requirement.why}` };
    case 'sigstoreSigned':
      return sigstoreSigned(requirement, options);
  }
}

async function sigstoreSigned(
  requirement: Extract<PolicyRequirement, { type: 'sigstoreSigned' }>,
  options: Parameters<typeof verifyWithPolicy>[0],
): Promise<RequirementResult> {
  const type = requirement.type;
  const reference = 'reference' in options.image ? options.image.reference : undefined;
  let rule: ReturnType<typeof identityRule>;
  try {
    rule = identityRule(requirement.signedIdentity, reference);
  } catch (err) {
    if (!isKilnError(err, 'POLICY_INVALID')) throw err;
    return { type, ok: false, detail: errorMessage(err) };
  }
  const keys = (await loadPolicyKeys(requirement.keys)).map((k) => withValidity(k, requirement.keyValidity));
  const report = await verifyImage({
    target: options.target,
    keys,
    identity: rule.repository,
    matchIdentity: rule.match,
    tagBinding: options.tagBinding,
    trustCache: options.trustCache,
    maxAgeSeconds: options.maxAgeSeconds,
    now: options.now,
  });
  return { type, ok: report.ok, detail: report.ok ? `signed by ${keys.map((k) => k.name).join(', ')}` : (report.failure?.message ?? 'not verified'), report };
}

/** The public keys a requirement names; an unreadable or invalid key is an error (never "no key, accept"). */
export async function loadPolicyKeys(keys: readonly PolicyKey[]): Promise<PublicKey[]> {
  const loaded: PublicKey[] = [];
  for (const key of keys) {
    if ('path' in key) loaded.push(loadPublicKey(await readKeyFile(key.path), key.path));
    else loaded.push(loadPublicKey(key.data, key.name));
  }
  return loaded;
}
