/** Characters of a repository glob: repository-name characters, `/` and `*`. */
const GLOB = /^[a-z0-9._/*-]+$/;

/** True when `pattern` is a usable repository glob (`team-a/**`, `library/*`, `**`). */
export function isValidGlob(pattern: string): boolean {
  return GLOB.test(pattern) && !/\*{3,}/.test(pattern);
}

/** Compiles a repository glob: `*` matches within one path segment, `**` across any number of them (`a/**` does not match `a`). */
export function compileGlob(pattern: string): RegExp {
  const source = pattern
    .split('**')
    .map((part) =>
      part
        .split('*')
        .map((literal) => literal.replace(/[.]/g, '\\.'))
        .join('[^/]*'),
    )
    .join('.*');
  return new RegExp(`^${source}$`);
}

/** A glob compiled once, for rule lists consulted on every request. */
export class RepositoryGlob {
  readonly pattern: string;
  private readonly re: RegExp;

  constructor(pattern: string) {
    this.pattern = pattern;
    this.re = compileGlob(pattern);
  }

  /** True when `repository` matches. */
  matches(repository: string): boolean {
    return this.re.test(repository);
  }
}
