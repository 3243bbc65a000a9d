import type { ImageConfig } from '../../oci/config.js';
import type { CopyEvent } from '../../oci/copy.js';
import type { Platform } from '../../oci/descriptor.js';
import type { Digest } from '../../oci/digest.js';
import type { RawManifest } from '../../oci/manifest.js';
import type { Target } from '../../oci/target.js';
import type { IgnoreMatcher } from '../context/dockerignore.js';
import type { LocalStore } from '../store/local-store.js';

/** Where a `--secret` value is read from; env values are staged on a tmpfs for the RUN that mounts them. */
export interface SecretSource {
  file?: string;
  env?: string;
}

/** Everything one build needs; the CLI resolves flags into this. */
export interface BuildOptions {
  store: LocalStore;
  /** The build context, already a directory (a tar on stdin is extracted first). */
  contextDir: string;
  /** .dockerignore of the context (or `<Dockerfile>.dockerignore`), when there is one. */
  ignore?: IgnoreMatcher | undefined;
  /** The Dockerfile's text and the name errors cite (e.g. `Dockerfile`). */
  dockerfile: { text: string; file: string };
  buildArgs?: ReadonlyMap<string, string>;
  /** Stage to build (`--target`); default the last. */
  target?: string | undefined;
  /** Platform of the image; default the host's. */
  platform?: Platform | undefined;
  noCache?: boolean;
  /** Re-fetch base images even when the store has them. */
  pull?: boolean;
  /** `--label`s, applied after the Dockerfile's. */
  labels?: Record<string, string>;
  /** `--build-context NAME=…`: oci-layout://DIR[:tag], docker-image://REF, or a directory. */
  namedContexts?: ReadonlyMap<string, string>;
  secrets?: ReadonlyMap<string, SecretSource>;
  /** SOURCE_DATE_EPOCH in seconds: mtime clamp, config `created` and history; default 0. */
  epoch?: number;
  registry?: { authfile?: string | undefined; insecure?: boolean | undefined };
  /** Environment for `env=` secrets and bare build args; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** `--cache-from`: build caches an earlier `--cache-to` wrote (OCI layout or registry); missing ones are empty. */
  cacheFrom?: readonly Target[];
  /** `--cache-to`: where to write the cache of every step this build used. */
  cacheTo?: readonly Target[];
  onEvent?: (event: BuildEvent) => void;
  signal?: AbortSignal;
}

/** Progress of a build, for the CLI to render; nothing in the builder prints. */
export type BuildEvent =
  | { type: 'step'; id: number; stage: string; text: string; cached: boolean }
  | { type: 'step-done'; id: number; seconds: number }
  | { type: 'output'; id: number; chunk: Buffer }
  | { type: 'pull'; event: CopyEvent }
  | { type: 'warning'; message: string };

/** What a build produced: the image in the local store, not yet named. */
export interface BuildResult {
  manifest: RawManifest;
  digest: Digest;
  config: ImageConfig;
  steps: { total: number; cached: number };
}
