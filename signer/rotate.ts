import { digestOf } from '../oci/digest.js';
import { KilnError } from '../oci/errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Target } from '../oci/target.js';
import { putBytes, SIGNATURE_ANNOTATION } from './attach.js';
import { KEY_ROTATION_MEDIA_TYPE, makeRotation, openRotation } from './key-rotation.js';
import { verifyBytes, type PublicKey, type SigningKey } from './keys.js';
import { signingIdentity } from './sign.js';
import { readTagStateArtifact, TAG_STATE_TAG, unverifiedVersion, writeTagStateArtifact } from './tag-state.js';

/** What `rotateKey` stored. */
export interface RotateResult {
  repository: string;
  oldKeyId: string;
  newKeyId: string;
  validFrom: string;
  /** Where the statement went: the repository's tag-state artifact. */
  tag: string;
  statementDigest: string;
}

/**
 * Stores in the repository `target` names a statement, signed by `oldKey`, that `newKey` takes over from
 * `validFrom` (default now): a rotation layer appended to the tag-state artifact, the state itself untouched.
 * A key rotates once per repository: a second statement by the same key would be a fork, which verifiers refuse.
 */
export async function rotateKey(options: { target: Target; oldKey: SigningKey; newKey: PublicKey; identity?: string; validFrom?: Date; now?: Date }): Promise<RotateResult> {
  const { target, oldKey, newKey } = options;
  const repository = signingIdentity(target, options.identity);
  const now = options.now ?? new Date();
  if (newKey.id === oldKey.publicKey.id) throw new KilnError('USAGE', `the new key ${newKey.name} is the old key itself`);
  const artifact = await readTagStateArtifact(target);
  for (const stored of artifact?.rotations ?? []) {
    const opened = openRotation(stored.bytes, stored.source);
    if ('reason' in opened || opened.rotation.repository !== repository || opened.oldKey.id !== oldKey.publicKey.id) continue;
    if (!verifyBytes(oldKey.publicKey, stored.bytes, Buffer.from(stored.signature, 'base64'))) continue;
    throw new KilnError('VALIDATION', `${oldKey.publicKey.name} was already rotated to key ${opened.newKey.id.slice(0, 12)} in ${repository}`, {
      hint: 'rotate from the newest key instead (a key rotating twice is a fork, which verifiers refuse)',
    });
  }
  const validFrom = options.validFrom ?? now;
  const made = makeRotation({ oldKey, newKey, repository, validFrom, now });
  const layer: Descriptor = {
    mediaType: KEY_ROTATION_MEDIA_TYPE,
    size: made.bytes.length,
    digest: digestOf(made.bytes),
    annotations: { [SIGNATURE_ANNOTATION]: made.signature },
  };
  await putBytes(target, layer, made.bytes);
  const kept = [...(artifact?.stateLayer ? [artifact.stateLayer] : []), ...(artifact?.rotationLayers ?? [])];
  await writeTagStateArtifact(target, [...kept, layer], unverifiedVersion(artifact?.state));
  return { repository, oldKeyId: oldKey.publicKey.id, newKeyId: newKey.id, validFrom: validFrom.toISOString(), tag: TAG_STATE_TAG, statementDigest: layer.digest };
}
