import { isJsonObject, showValue } from './descriptor.js';
import { KilnError } from './errors.js';
import { validateIndex, type ImageIndex } from './manifest.js';

/** The only image layout version the image-spec defines (image-layout.md § oci-layout file). */
export const OCI_LAYOUT_VERSION = '1.0.0';

/** The `oci-layout` marker file at the root of an OCI image layout (image-layout.md § oci-layout file). */
export interface OciLayoutFile {
  imageLayoutVersion: typeof OCI_LAYOUT_VERSION;
}

/**
 * Validates a parsed `oci-layout` document: image-layout.md § Content requires a JSON object with
 * `imageLayoutVersion` and allows extra fields; a version other than 1.0.0 is a layout we cannot read.
 */
export function validateOciLayoutFile(value: unknown, subject = 'oci-layout'): OciLayoutFile {
  if (!isJsonObject(value)) throw new KilnError('LAYOUT_INVALID', `${subject} must be a JSON object, got ${showValue(value)}`);
  if (value.imageLayoutVersion !== OCI_LAYOUT_VERSION) {
    const got = value.imageLayoutVersion === undefined ? 'missing' : `got ${showValue(value.imageLayoutVersion)}`;
    throw new KilnError('LAYOUT_INVALID', `${subject}: imageLayoutVersion: must be "${OCI_LAYOUT_VERSION}", ${got}`);
  }
  return value as unknown as OciLayoutFile;
}

/** Parses and validates the bytes of an `oci-layout` file. */
export function parseOciLayoutFile(bytes: Uint8Array, subject = 'oci-layout'): OciLayoutFile {
  return validateOciLayoutFile(parseLayoutJson(bytes, subject), subject);
}

/**
 * Parses and validates a layout's `index.json`, which image-layout.md § index.json file requires
 * to be an image index; errors are LAYOUT_INVALID and name the field.
 */
export function parseLayoutIndex(bytes: Uint8Array, subject = 'index.json'): ImageIndex {
  return validateIndex(parseLayoutJson(bytes, subject), subject, 'LAYOUT_INVALID');
}

function parseLayoutJson(bytes: Uint8Array, subject: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes));
  } catch (err) {
    throw new KilnError('LAYOUT_INVALID', `${subject} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}
