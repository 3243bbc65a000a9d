import { Option, type Command } from 'commander';
import { KilnError } from '../oci/errors.js';
import { parsePlatform } from '../oci/platform.js';
import type { Platform } from '../oci/descriptor.js';

/** Registry access flags shared by every command that talks to a registry. */
export interface RegistryFlags {
  authfile?: string;
  insecure?: boolean;
}

/** Adds `--authfile` and `--insecure` (skopeo/podman names). */
export function addRegistryFlags(cmd: Command): Command {
  return cmd
    .option('--authfile <file>', 'credentials file (default: REGISTRY_AUTH_FILE, docker config.json, containers auth.json)')
    .option('--insecure', 'allow plain HTTP and skip TLS verification for non-loopback registries');
}

/** Adds `--format text|json`. */
export function addFormatFlag(cmd: Command): Command {
  return cmd.addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'));
}

/** Parses `--platform os/arch[/variant]`, as a usage error when malformed. */
export function platformFlag(value: string | undefined): Platform | undefined {
  if (value === undefined) return undefined;
  try {
    return parsePlatform(value);
  } catch (err) {
    throw new KilnError('USAGE', `invalid --platform "${value}": expected os/arch[/variant], e.g. linux/amd64`, { cause: err });
  }
}
