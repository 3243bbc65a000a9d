export type { RunSpec, RunMount, RunResult } from './types.js';
export { DEFAULT_HOSTNAME } from './types.js';
export { runInNamespaces } from './run.js';
export { resolveUser, type ResolvedUser } from './user.js';
export { resolveInRoot, type RootPath } from './resolve-in-root.js';
