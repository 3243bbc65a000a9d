import { isKilnError, type KilnErrorCode } from '../oci/errors.js';

/** Process exit codes (STYLE.md): 0 ok, 1 failure, 2 usage; verify uses 10–12 as cosign does. */
export const ExitCode = {
  Ok: 0,
  Failure: 1,
  Usage: 2,
  /** verify: the image has no signature at all (cosign's ImageWithoutSignature). */
  NoSignature: 10,
  /** verify: the tag (or digest) does not exist (cosign's NonExistentTag). */
  NoSuchTag: 11,
  /** verify: signatures exist but none passes every check (cosign's NoMatchingSignature). */
  NoMatchingSignature: 12,
} as const;

const USAGE_CODES: ReadonlySet<KilnErrorCode> = new Set(['USAGE', 'UNSUPPORTED_TRANSPORT']);
const VERIFY_CODES: Partial<Record<KilnErrorCode, number>> = {
  SIGNATURE_NOT_FOUND: ExitCode.NoSignature,
  TAG_NOT_FOUND: ExitCode.NoSuchTag,
  SIGNATURE_MISMATCH: ExitCode.NoMatchingSignature,
};

/** Exit code for an error that reached the top level. */
export function exitCodeFor(err: unknown): number {
  if (isKilnError(err) && USAGE_CODES.has(err.code)) return ExitCode.Usage;
  if (isKilnError(err)) return VERIFY_CODES[err.code] ?? ExitCode.Failure;
  return ExitCode.Failure;
}
