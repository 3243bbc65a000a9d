import { isKilnError, type KilnErrorCode } from '../oci/errors.js';

/** Process exit codes (STYLE.md): 0 ok, 1 failure, 2 usage; verify uses 10–13 as cosign does. */
export const ExitCode = {
  Ok: 0,
  Failure: 1,
  Usage: 2,
} as const;

const USAGE_CODES: ReadonlySet<KilnErrorCode> = new Set(['USAGE', 'UNSUPPORTED_TRANSPORT']);

/** Exit code for an error that reached the top level. */
export function exitCodeFor(err: unknown): number {
  if (isKilnError(err) && USAGE_CODES.has(err.code)) return ExitCode.Usage;
  return ExitCode.Failure;
}
