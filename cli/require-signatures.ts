import { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import { isDigest, verifyBytes, type Digest } from '../oci/digest.js';
import { errorMessage, KilnError } from '../oci/errors.js';
import { parseManifest, type RawManifest } from '../oci/manifest.js';
import { parseReference } from '../oci/reference.js';
import { readStreamLimited } from '../oci/stream-util.js';
import type { ReferrersQuery, Target, TargetRef } from '../oci/target.js';
import type { AdmissionHook, RegistryReader } from '../registry/context.js';
import { RegistryError } from '../registry/errors.js';
import { SIMPLE_SIGNING_MEDIA_TYPE } from '../signer/attach.js';
import { BUNDLE_MEDIA_TYPE } from '../signer/bundle.js';
import { KEY_ROTATION_MEDIA_TYPE } from '../signer/key-rotation.js';
import type { Policy } from '../signer/policy.js';
import { verifyWithPolicy } from '../signer/policy-verify.js';
import { TAG_STATE_MEDIA_TYPE } from '../signer/tag-state.js';
import { MemoryTrustCache } from '../signer/trust-cache.js';

// `kiln serve --require-signatures policy.json`: the CLI composes the registry's admission hook with the
// signer's policy verifier (registry/ never imports signer/, DESIGN rule 2). The verifier reads the image's
// signatures and tag state through `StoreTarget`, a read-only Target over the registry's own stores handed
// to the hook (no loopback HTTP: no credentials, no recursion through admission, no access-log noise).

/** Largest blob the verifier reads through the store (signature payloads, bundles and tag states are a few KiB). */
const MAX_BLOB_BYTES = 4 * 1024 * 1024;

/** A read-only `Target` over one repository of the running registry, resolving to the manifest being admitted. */
export class StoreTarget implements Target {
  readonly description: string;
  readonly origin: { registry: string; repository: string };

  constructor(
    private readonly reader: RegistryReader,
    registry: string,
    private readonly repository: string,
    readonly ref: TargetRef,
    private readonly root: RawManifest,
  ) {
    this.origin = { registry, repository };
    this.description = `${registry}/${repository}${ref.tag !== undefined ? `:${ref.tag}` : `@${root.digest}`}`;
  }

  async resolve(): Promise<RawManifest> {
    return this.root;
  }

  async getManifest(ref: Digest | string): Promise<RawManifest> {
    const digest = isDigest(ref) ? ref : await this.reader.resolveTag(this.repository, ref);
    const record = digest === undefined ? undefined : await this.reader.getManifest(this.repository, digest);
    if (!record) throw new KilnError('MANIFEST_UNKNOWN', `manifest ${ref} is not in ${this.repository}`);
    const raw = parseManifest(record.bytes, record.mediaType, `manifest ${record.digest}`);
    if (raw.digest !== record.digest) throw new KilnError('DIGEST_MISMATCH', `stored manifest ${record.digest} hashes to ${raw.digest}`);
    return raw;
  }

  async putManifest(): Promise<void> {
    throw new KilnError('UNSUPPORTED', `${this.description} is read-only`);
  }

  statBlob(digest: Digest): Promise<number | undefined> {
    return this.reader.blobSize(this.repository, digest);
  }

  async getBlob(desc: Descriptor): Promise<Readable> {
    const size = await this.reader.blobSize(this.repository, desc.digest);
    if (size === undefined) throw new KilnError('BLOB_UNKNOWN', `blob ${desc.digest} is not in ${this.repository}`);
    if (size !== desc.size) throw new KilnError('SIZE_MISMATCH', `blob ${desc.digest} is ${size} bytes, not ${desc.size}`);
    if (size > MAX_BLOB_BYTES) throw new KilnError('TOO_LARGE', `blob ${desc.digest} is ${size} bytes: too large for a signature check`);
    const bytes = await readStreamLimited(await this.reader.getBlob(desc.digest), MAX_BLOB_BYTES, desc.digest);
    verifyBytes(bytes, desc.digest);
    return Readable.from([bytes]);
  }

  async putBlob(): Promise<void> {
    throw new KilnError('UNSUPPORTED', `${this.description} is read-only`);
  }

  referrers(digest: Digest, query?: ReferrersQuery): Promise<Descriptor[]> {
    return this.reader.listReferrers(this.repository, digest, query?.artifactType);
  }

  async tags(): Promise<string[]> {
    return (await this.reader.listTags(this.repository)) ?? [];
  }

  async close(): Promise<void> {
    // Nothing to release: the stores belong to the server.
  }
}

/** Layer media types of the artifacts signing writes; none of them is a filesystem a runtime would unpack. */
const SIGNATURE_LAYER_TYPES = new Set([SIMPLE_SIGNING_MEDIA_TYPE, BUNDLE_MEDIA_TYPE, TAG_STATE_MEDIA_TYPE, KEY_ROTATION_MEDIA_TYPE]);

/**
 * True for the artifacts verification itself reads, which must stay pullable: cosign `.sig` manifests, Sigstore
 * bundle referrers and the signed tag state — image manifests whose every layer is a signature payload, a bundle
 * or a tag-state document. Decided by content, not by tag name, so a runnable image cannot slip through.
 */
export function isSignatureArtifact(manifest: RawManifest): boolean {
  if (manifest.kind !== 'manifest') return false;
  const layers = manifest.parsed.layers;
  return layers.length > 0 && layers.every((l) => SIGNATURE_LAYER_TYPES.has(l.mediaType));
}

/** Options of `signatureAdmission`. */
export interface SignatureAdmissionOptions {
  policy: Policy;
  /** Also enforce pulls by digest (`--require-signatures-by-digest`). */
  byDigest: boolean;
  /** `host[:port]` the images are named with (the scope and identity signatures name); undefined until known. */
  registryName: () => string | undefined;
}

/**
 * The admission hook of `kiln serve --require-signatures`: a manifest pulled by tag (and by digest with
 * `byDigest`) is served only when the policy accepts it — for a sigstoreSigned scope, a signature by a trusted
 * key and the tag bound to this digest in the newest signed tag state. Pushes are never refused here; nor are
 * pulls of signature artifacts. Any error refuses (fail closed).
 */
export function signatureAdmission(options: SignatureAdmissionOptions): AdmissionHook {
  const trustCache = new MemoryTrustCache();
  const { policy } = options;
  return async (manifest, repository, tag, context) => {
    if (context?.action !== 'pull') return;
    if (tag === undefined && !options.byDigest) return;
    if (isSignatureArtifact(manifest)) return;
    const shown = `${repository}${tag !== undefined ? `:${tag}` : `@${manifest.digest}`}`;
    const deny = (why: string): RegistryError =>
      new RegistryError('DENIED', `${shown} is refused by the signature policy ${policy.source}: ${why}`, { detail: { policy: policy.source } });
    const registry = options.registryName();
    if (!context.reader || registry === undefined) throw deny('the registry cannot read its own content yet');
    try {
      const target = new StoreTarget(context.reader, registry, repository, tag !== undefined ? { tag } : { digest: manifest.digest }, manifest);
      const reference = parseReference(`${registry}/${shown}`);
      const report = await verifyWithPolicy({ target, image: { transport: 'docker', reference }, policy, trustCache });
      if (!report.ok) throw deny(report.failure?.message ?? 'not verified');
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw deny(`verification failed: ${errorMessage(err)}`);
    }
  };
}

