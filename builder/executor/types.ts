/** What `runInNamespaces` executes: one RUN step of a stage, over a read-only rootfs, writing its change to `upper`. */
export interface RunSpec {
  /** Read-only lower: the stage filesystem before this step (never modified). */
  rootfs: string;
  /** Empty directory that receives the change (overlay upperdir); the overlay workdir is created beside it. */
  upper: string;
  /** Exec form, already decided by the caller (shell form arrives as [...SHELL, text]). */
  argv: string[];
  /** KEY=VALUE, exactly the process environment: nothing from the host leaks in. */
  env: string[];
  /** Absolute path inside the container; created (in upper) if missing, as Docker does. */
  cwd: string;
  user: { uid: number; gid: number; groups?: number[] };
  /** 'default' shares the host's network (as buildah --isolation chroot), 'host' too; 'none' = a new netns with lo. */
  network: 'none' | 'default' | 'host';
  /** The UTS hostname, also written to /etc/hosts; default {@link DEFAULT_HOSTNAME}. */
  hostname?: string;
  mounts: RunMount[];
  /** Combined stdout+stderr, as it arrives. */
  onOutput?: (chunk: Buffer) => void;
  /** Abort kills the whole process tree, drops every mount and rejects. */
  signal?: AbortSignal;
}

/** A RUN --mount: host paths exposed at `target` (absolute, inside the container) without landing in the layer. */
export type RunMount =
  /** From another stage or the context (host path). */
  | { type: 'bind'; source: string; target: string; readonly: boolean }
  /** A persistent host directory, read-write unless `readonly`. */
  | { type: 'cache'; source: string; target: string; readonly?: boolean }
  /** A host file shown read-only through a tmpfs-backed copy (mode default 0400, owner default 0:0). */
  | { type: 'secret'; source: string; target: string; mode?: number; uid?: number; gid?: number }
  /** A fresh tmpfs (mode 1777); `size` in bytes. */
  | { type: 'tmpfs'; target: string; size?: number };

/** How a RUN ended: a non-zero exit is a result, not an error. */
export interface RunResult {
  exitCode: number;
  /** Name of the signal that ended the command (e.g. 'SIGKILL'), if one did. */
  signal?: string;
  /** The last ~20 lines of output, for the error message of a failing step. */
  lastLines: string[];
}

/** Hostname of a RUN when the spec names none (BuildKit uses 'buildkitsandbox'). */
export const DEFAULT_HOSTNAME = 'kiln';
