/** One challenge of a `WWW-Authenticate` header: the scheme (lowercased) and its parameters (lowercased keys). */
export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
}

// RFC 9110 § 5.6.2 token characters.
const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

/**
 * Parses a `WWW-Authenticate` value (RFC 9110 § 11.6.1) into its challenges, e.g.
 * `Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull,push", Basic realm="x"`.
 * Quoted strings may hold commas and backslash escapes; a token not followed by `=` starts a new challenge.
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  let current: AuthChallenge | undefined;
  let i = 0;
  const n = header.length;
  const at = (k: number): string => header.charAt(k);
  const skipSpace = (): void => {
    while (i < n && (at(i) === ' ' || at(i) === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && TOKEN_CHAR.test(at(i))) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skipSpace();
    if (at(i) === ',') {
      i++;
      continue;
    }
    const token = readToken();
    if (token === '') {
      i++; // A stray character: skip it rather than reject the whole header.
      continue;
    }
    skipSpace();
    if (at(i) === '=' && current) {
      i++;
      skipSpace();
      current.params[token.toLowerCase()] = at(i) === '"' ? readQuoted() : readBare();
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      challenges.push(current);
    }
  }
  return challenges;

  function readQuoted(): string {
    let value = '';
    i++; // opening quote
    while (i < n && at(i) !== '"') {
      if (at(i) === '\\' && i + 1 < n) i++;
      value += at(i);
      i++;
    }
    i++; // closing quote
    return value;
  }

  function readBare(): string {
    const start = i;
    while (i < n && at(i) !== ',' && at(i) !== ' ' && at(i) !== '\t') i++;
    return header.slice(start, i);
  }
}
