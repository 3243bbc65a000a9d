// Build contexts, .dockerignore and COPY/ADD planning: the part of `kiln build` that reads sources.
export { openBuildContext, type BuildContext, type OpenBuildContextOptions } from './context.js';
export { compileIgnore, loadDockerignore, parseIgnoreFile, type IgnoreMatcher, type LoadedIgnore } from './dockerignore.js';
export { PatternMatcher, cleanPath, type MatchState } from './pattern-matcher.js';
export { StatCache, hashFile } from './stat-cache.js';
export { planCopy, digestCopyInputs, type PlanCopyOptions, type CopyPlan, type CopySource } from './copy-plan.js';
export { parseChmod, type ChmodSpec } from './chmod.js';
export { matchGlob, validateGlob, hasWildcards } from './glob.js';
export { readTar, isTarFile, detectTarCompression, DEFAULT_TAR_LIMITS, type TarItem, type TarLimits } from './tar-read.js';
