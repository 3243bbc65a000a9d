import type { ImageConfig } from '../../oci/config.js';
import type { Descriptor } from '../../oci/descriptor.js';
import { digestOf } from '../../oci/digest.js';
import { parseManifest, type RawManifest } from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';
import type { LocalStore } from '../store/local-store.js';
import type { ImageLayer } from './base-image.js';

/** Docker layer media types have OCI twins with the same bytes: an OCI manifest lists the OCI names. */
const OCI_LAYER_TYPE: Record<string, string> = {
  [MediaType.DockerLayerGzip]: MediaType.OciLayerGzip,
  [MediaType.DockerLayer]: MediaType.OciLayer,
  [MediaType.DockerForeignLayerGzip]: MediaType.OciLayerNondistributableGzip,
};

/**
 * Writes the image config and an OCI manifest into the store and returns the manifest. Keys are
 * serialised in a fixed order (the object's), so the same build gives the same bytes.
 */
export async function writeImage(store: LocalStore, config: ImageConfig, layers: ImageLayer[]): Promise<RawManifest> {
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDesc: Descriptor = { mediaType: MediaType.OciConfig, digest: digestOf(configBytes), size: configBytes.length };
  await store.layout.blobs.put(configBytes, { expectedDigest: configDesc.digest, expectedSize: configDesc.size, subject: 'image config' });
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: configDesc,
    layers: layers.map(({ descriptor: d }) => ({ mediaType: OCI_LAYER_TYPE[d.mediaType] ?? d.mediaType, digest: d.digest, size: d.size })),
  };
  const raw = parseManifest(Buffer.from(JSON.stringify(manifest)), MediaType.OciManifest, 'built manifest');
  // Only the blob: index.json names images that were tagged; an untagged build is kept alive by the cache until `prune`.
  await store.layout.blobs.put(raw.bytes, { expectedDigest: raw.digest, expectedSize: raw.bytes.length, subject: 'built manifest' });
  return raw;
}
