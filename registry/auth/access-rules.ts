import type { Action } from '../context.js';
import { RepositoryGlob } from './glob.js';
import type { AccessRule } from './settings.js';

/** All actions, in the order scopes list them. */
export const ALL_ACTIONS: readonly Action[] = ['pull', 'push', 'delete'];

interface CompiledRule {
  glob: RepositoryGlob;
  users: ReadonlySet<string>;
  groups: readonly string[];
  actions: readonly Action[];
  anonymous: readonly Action[] | undefined;
}

/**
 * The `access` list: the first rule whose glob matches the repository and that names the caller
 * (as a user, `*`, through a group, or because it has an `anonymous` entry) decides; no rule, no access.
 * A named caller gets `actions`; everyone, signed in or not, gets `anonymous`.
 */
export class AccessRules {
  private readonly rules: CompiledRule[];
  private readonly memberOf = new Map<string, string[]>();

  constructor(rules: readonly AccessRule[], groups: Readonly<Record<string, readonly string[]>>) {
    this.rules = rules.map((r) => ({ glob: new RepositoryGlob(r.repository), users: new Set(r.users), groups: r.groups, actions: r.actions, anonymous: r.anonymous }));
    for (const [group, members] of Object.entries(groups)) {
      for (const user of members) this.memberOf.set(user, [...(this.memberOf.get(user) ?? []), group]);
    }
  }

  /** Actions `user` (undefined: anonymous) may take on `repository`. */
  permitted(user: string | undefined, repository: string): Set<Action> {
    for (const rule of this.rules) {
      if (!rule.glob.matches(repository)) continue;
      const named = user !== undefined && this.names(rule, user);
      if (!named && rule.anonymous === undefined) continue;
      return new Set([...(named ? rule.actions : []), ...(rule.anonymous ?? [])]);
    }
    return new Set();
  }

  /** True when `user` may take every one of `actions` on `repository`. */
  allows(user: string | undefined, repository: string, actions: readonly Action[]): boolean {
    const granted = this.permitted(user, repository);
    return actions.every((a) => granted.has(a));
  }

  private names(rule: CompiledRule, user: string): boolean {
    if (rule.users.has(user) || rule.users.has('*')) return true;
    const groups = this.memberOf.get(user) ?? [];
    return rule.groups.some((g) => groups.includes(g));
  }
}
