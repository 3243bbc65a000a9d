/** Error codes of the OCI Distribution spec (§ error codes), shared by client and server. */
export type DistributionErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'RANGE_INVALID';

/** Codes Kiln itself raises, beyond the Distribution ones. */
export type KilnOwnErrorCode =
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'REFERENCE_INVALID'
  | 'VALIDATION'
  | 'NOT_FOUND'
  | 'LAYOUT_INVALID'
  | 'ARCHIVE_INVALID'
  | 'UNSAFE_PATH'
  | 'TOO_LARGE'
  | 'AUTH_CONFIG'
  | 'AUTH_FAILED'
  | 'NETWORK'
  | 'REGISTRY'
  | 'USAGE'
  | 'PLATFORM_UNKNOWN'
  | 'UNSUPPORTED_TRANSPORT'
  | 'INTERNAL'
  // Signing and verification (signer/); the last three are verify's exit codes 10, 11 and 12, as cosign's.
  | 'KEY_INVALID'
  | 'PASSPHRASE_INVALID'
  | 'POLICY_INVALID'
  | 'SIGNATURE_NOT_FOUND'
  | 'TAG_NOT_FOUND'
  | 'SIGNATURE_MISMATCH'
  // Building (builder/): a Dockerfile that does not parse, a context that can't provide what is asked, a failing step.
  | 'DOCKERFILE_INVALID'
  | 'CONTEXT_INVALID'
  | 'BUILD_FAILED';

export type KilnErrorCode = DistributionErrorCode | KilnOwnErrorCode;

export interface KilnErrorOptions {
  cause?: unknown;
  /** What the user can do about it; printed after the message. */
  hint?: string;
  /** Extra machine-readable detail (for `--format json` and registry error bodies). */
  detail?: unknown;
}

/** Base of every error Kiln throws: a stable string `code`, a one-line message and an optional hint. */
export class KilnError<C extends KilnErrorCode = KilnErrorCode> extends Error {
  readonly code: C;
  readonly hint: string | undefined;
  readonly detail: unknown;

  constructor(code: C, message: string, options: KilnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KilnError';
    this.code = code;
    this.hint = options.hint;
    this.detail = options.detail;
  }
}

/** True when `err` is a KilnError, optionally with one of `codes`. */
export function isKilnError<C extends KilnErrorCode>(err: unknown, ...codes: C[]): err is KilnError<C> {
  return err instanceof KilnError && (codes.length === 0 || (codes as string[]).includes(err.code));
}

/** Message of any thrown value, for wrapping causes. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
