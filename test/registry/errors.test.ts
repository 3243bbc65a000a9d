import { describe, expect, it } from 'vitest';
import { type DistributionErrorCode, KilnError } from '../../oci/errors.js';
import { RegistryError, toHttpError } from '../../registry/errors.js';

describe('toHttpError (registry/errors.ts)', () => {
  it('gives every spec code its usual status', () => {
    const expected: Record<DistributionErrorCode, number> = {
      BLOB_UNKNOWN: 404, BLOB_UPLOAD_INVALID: 400, BLOB_UPLOAD_UNKNOWN: 404, DIGEST_INVALID: 400, MANIFEST_BLOB_UNKNOWN: 400,
      MANIFEST_INVALID: 400, MANIFEST_UNKNOWN: 404, NAME_INVALID: 400, NAME_UNKNOWN: 404, SIZE_INVALID: 400,
      UNAUTHORIZED: 401, DENIED: 403, UNSUPPORTED: 405, TOOMANYREQUESTS: 429, RANGE_INVALID: 416,
    };
    for (const [code, status] of Object.entries(expected)) {
      const http = toHttpError(new RegistryError(code as DistributionErrorCode, 'm'));
      expect(http.status, code).toBe(status);
      expect(http.body).toEqual({ errors: [{ code, message: 'm' }] });
      expect(toHttpError(new KilnError(code as DistributionErrorCode, 'm')).status, code).toBe(status);
    }
  });

  it('maps Kiln codes of bad input to spec codes', () => {
    expect(toHttpError(new KilnError('DIGEST_MISMATCH', 'blob has digest a, expected b'))).toMatchObject({ status: 400, body: { errors: [{ code: 'DIGEST_INVALID' }] } });
    expect(toHttpError(new KilnError('SIZE_MISMATCH', 'short'))).toMatchObject({ status: 400, body: { errors: [{ code: 'SIZE_INVALID' }] } });
    expect(toHttpError(new RegistryError('UNSUPPORTED', 'no', { status: 415 })).status).toBe(415);
    expect(toHttpError(new RegistryError('SIZE_INVALID', 'big', { status: 413, headers: { Connection: 'close' } })).headers).toEqual({ Connection: 'close' });
  });

  it('never puts a filesystem path in a body', () => {
    const fromStore = toHttpError(new KilnError('BLOB_UNKNOWN', 'blob sha256:x is not in /var/lib/kiln/blobs'));
    expect(fromStore.body.errors[0]?.message).toBe('blob unknown to registry');
    const validation = toHttpError(new KilnError('MANIFEST_INVALID', 'manifest: config: bad (see /home/u/data/x.json)'));
    expect(validation.body.errors[0]?.message).not.toContain('/home/u');
    expect(validation.body.errors[0]?.message).toContain('manifest: config: bad');
  });

  it('answers anything unexpected with a generic 500, flagged for the log', () => {
    for (const err of [new Error('EACCES: permission denied, open /srv/x'), new KilnError('INTERNAL', 'SQLITE_BUSY at /srv/db'), 'thrown string']) {
      const http = toHttpError(err);
      expect(http.status).toBe(500);
      expect(http.internal).toBe(true);
      expect(http.body).toEqual({ errors: [{ code: 'UNKNOWN', message: 'internal server error' }] });
    }
  });
});
