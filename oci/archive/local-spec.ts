/** Transports `openLocalTarget` understands, as containers-transports(5) names them. */
export const LOCAL_TRANSPORTS = ['oci', 'oci-archive', 'docker-archive'] as const;

/** True when `spec` starts with one of the local transports (`oci:`, `oci-archive:`, `docker-archive:`). */
export function isLocalSpec(spec: string): boolean {
  return LOCAL_TRANSPORTS.some((t) => spec.startsWith(`${t}:`));
}
