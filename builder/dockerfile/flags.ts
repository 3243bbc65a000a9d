import { positionOf, type AstNode } from './ast.js';
import { closestMatch, dockerfileError } from './errors.js';

/** How a flag takes its value: `--link[=true|false]`, `--from=x` once, `--exclude=x` any number of times. */
export type FlagKind = 'bool' | 'string' | 'strings';

/** The decoded value of each kind of flag. */
export type FlagValue<K extends FlagKind> = K extends 'bool' ? boolean : K extends 'string' ? string : string[];

/** The flags an instruction was given, by name; absent when not given. */
export type ParsedFlags<S extends Record<string, FlagKind>> = { [N in keyof S]?: FlagValue<S[N]> };

/**
 * Decodes the `--flag` words of `node` against the flags `instruction` accepts, as BuildKit's BFlags does:
 * unknown flags, repeated single-valued flags, missing values and non-boolean values of boolean flags are errors.
 */
export function parseFlags<S extends Record<string, FlagKind>>(node: AstNode, instruction: string, spec: S): ParsedFlags<S> {
  const out: Record<string, boolean | string | string[]> = {};
  const names = Object.keys(spec);
  for (const word of node.flags) {
    const eq = word.indexOf('=');
    const flag = eq < 0 ? word : word.slice(0, eq);
    const value = eq < 0 ? undefined : word.slice(eq + 1);
    const name = flag.slice(2);
    const at = positionOf(node, flag);
    const kind = Object.prototype.hasOwnProperty.call(spec, name) ? spec[name] : undefined;
    if (kind === undefined) {
      const expected = names.length === 0 ? `${instruction} takes no flags` : `expected ${names.map((n) => `--${n}`).join(', ')}`;
      const close = closestMatch(name, names);
      const suggestion = close === undefined ? '' : `: did you mean --${close}?`;
      throw dockerfileError(at, `unknown flag ${flag} for ${instruction}${suggestion} (${expected})`);
    }
    if (name in out && kind !== 'strings') {
      throw dockerfileError(at, `duplicate flag specified: ${flag} (${instruction} takes it once)`);
    }
    switch (kind) {
      case 'bool': {
        if (value === '') throw dockerfileError(at, `missing a value on flag: ${flag} (use ${flag} or ${flag}=true|false)`);
        const v = (value ?? 'true').toLowerCase();
        if (v !== 'true' && v !== 'false') {
          throw dockerfileError(at, `expecting boolean value for flag ${flag}, not: ${value ?? ''} (use true or false)`);
        }
        out[name] = v === 'true';
        break;
      }
      case 'string':
        if (value === undefined) throw dockerfileError(at, `missing a value on flag: ${flag} (expected ${flag}=<value>)`);
        out[name] = value;
        break;
      case 'strings': {
        if (value === undefined) throw dockerfileError(at, `missing a value on flag: ${flag} (expected ${flag}=<value>)`);
        const list = out[name];
        out[name] = Array.isArray(list) ? [...list, value] : [value];
        break;
      }
    }
  }
  return out as ParsedFlags<S>;
}
