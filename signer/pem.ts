import { KilnError } from '../oci/errors.js';

/** One PEM block (RFC 7468): its label and the bytes its base64 body holds. */
export interface PemBlock {
  label: string;
  bytes: Buffer;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)\r?\n?-----END \1-----/;

/** Encodes `bytes` as a PEM block with 64-character lines, as Go's encoding/pem writes it. */
export function pemEncode(label: string, bytes: Uint8Array): string {
  const body = Buffer.from(bytes).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** The first PEM block of `text`; KEY_INVALID naming `what` when there is none or its body is not base64. */
export function pemDecode(text: string, what: string): PemBlock {
  const match = BLOCK.exec(text);
  if (!match) throw new KilnError('KEY_INVALID', `${what}: no PEM block found (expected -----BEGIN …----- / -----END …-----)`);
  const label = match[1] ?? '';
  const body = (match[2] ?? '').replace(/\s+/g, '');
  // RFC 7468 § 2: headers ("Proc-Type:" …) are not part of the key formats Kiln reads.
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) {
    throw new KilnError('KEY_INVALID', `${what}: the ${label} PEM block is not valid base64`);
  }
  return { label, bytes: Buffer.from(body, 'base64') };
}
