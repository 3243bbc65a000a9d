import type { Digest } from '../../oci/digest.js';
import { RepositoryGlob } from '../auth/glob.js';
import type { PolicyRule } from '../auth/settings.js';
import type { RepositoryPolicy } from '../context.js';
import type { MetadataStore } from '../db/metadata-store.js';
import { RegistryError } from '../errors.js';
import { formatBytes } from './units.js';

/**
 * Referrer-schema (`sha256-<hex>`) and cosign (`sha256-<hex>.sig`, `.att`, `.sbom`) tags, and the signer's
 * `kiln-tag-state` (the signed tag → digest document, re-written by every `kiln sign`): rewritten by design,
 * so never immutable. The registry knows the tag's name only, not the signer (DESIGN rule 2).
 */
const EXEMPT_TAG = /^(?:sha(?:256|512)-[0-9a-f]+(?:\.[a-z]+)?|kiln-tag-state)$/;

interface CompiledPolicy {
  rule: PolicyRule;
  glob: RepositoryGlob;
}

/**
 * The `policies` list (first rule whose glob matches a repository applies): immutable tags refuse
 * moving or deleting an existing tag, quotas refuse a blob or manifest that would take the
 * repository past its limit. Refusals are 403 DENIED naming the rule. Checks and writes are not one
 * transaction: concurrent pushes to one repository may together overshoot a quota by what they add.
 */
export class PolicyRules implements RepositoryPolicy {
  private readonly policies: CompiledPolicy[];
  private readonly metadata: MetadataStore;

  constructor(rules: readonly PolicyRule[], metadata: MetadataStore) {
    this.policies = rules.map((rule) => ({ rule, glob: new RepositoryGlob(rule.repository) }));
    this.metadata = metadata;
  }

  /** The rule that applies to `repository`, if any. */
  ruleFor(repository: string): PolicyRule | undefined {
    return this.policies.find((p) => p.glob.matches(repository))?.rule;
  }

  async beforeBlob(repository: string, digest: Digest, size: number): Promise<void> {
    const rule = this.ruleFor(repository);
    if (rule?.quotaBytes === undefined) return;
    // Counted once per repository: a blob it already holds adds nothing.
    if ((await this.metadata.blobSize(repository, digest)) !== undefined) return;
    await this.checkQuota(rule, repository, size, 'blob');
  }

  async beforeManifest(repository: string, manifest: { digest: Digest; size: number }, tag?: string): Promise<void> {
    const rule = this.ruleFor(repository);
    if (rule === undefined) return;
    if (rule.immutableTags && tag !== undefined && !EXEMPT_TAG.test(tag)) {
      const current = await this.metadata.resolveTag(repository, tag);
      if (current !== undefined && current !== manifest.digest) {
        throw immutable(rule, repository, `tag ${tag} already points to ${current} and may not be moved`);
      }
    }
    if (rule.quotaBytes !== undefined && (await this.metadata.getManifest(repository, manifest.digest)) === undefined) {
      await this.checkQuota(rule, repository, manifest.size, 'manifest');
    }
  }

  async beforeDelete(repository: string, reference: { tag: string } | { digest: Digest }): Promise<void> {
    const rule = this.ruleFor(repository);
    if (!rule?.immutableTags) return;
    if ('tag' in reference) {
      if (!EXEMPT_TAG.test(reference.tag) && (await this.metadata.resolveTag(repository, reference.tag)) !== undefined) {
        throw immutable(rule, repository, `tag ${reference.tag} may not be deleted`);
      }
      return;
    }
    // Deleting a manifest deletes its tags too.
    const tags = (await this.metadata.listTags(repository)) ?? [];
    for (const tag of tags) {
      if (EXEMPT_TAG.test(tag)) continue;
      if ((await this.metadata.resolveTag(repository, tag)) === reference.digest) {
        throw immutable(rule, repository, `manifest ${reference.digest} is tagged ${tag} and may not be deleted`);
      }
    }
  }

  private async checkQuota(rule: PolicyRule, repository: string, adding: number, what: string): Promise<void> {
    const quota = rule.quotaBytes ?? Infinity;
    const usage = await this.metadata.repositoryUsage(repository);
    if (usage + adding <= quota) return;
    throw new RegistryError(
      'DENIED',
      `repository ${repository} is limited to ${rule.quota} by quota policy ${rule.repository}: it holds ${formatBytes(usage)} and this ${what} of ${formatBytes(adding)} would exceed it`,
      { detail: { policy: rule.repository, quota: quota, usage, adding } },
    );
  }
}

function immutable(rule: PolicyRule, repository: string, what: string): RegistryError {
  return new RegistryError('DENIED', `${repository} has immutable tags (policy ${rule.repository}): ${what}`, { detail: { policy: rule.repository, immutableTags: true } });
}
