/** Environment variables holding the key passphrase, strongest first; set-but-empty means an empty passphrase (as cosign). */
export const PASSPHRASE_ENV = ['KILN_PASSWORD', 'COSIGN_PASSWORD'] as const;

/** The passphrase the environment gives, or undefined (the caller may prompt). */
export function passphraseFromEnvironment(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const name of PASSPHRASE_ENV) {
    const value = env[name];
    if (value !== undefined) return value;
  }
  return undefined;
}
