import { Worker } from 'node:worker_threads';
import { KilnError, errorMessage } from '../../oci/errors.js';

/** One file to copy into a rootfs and the metadata it gets once copied. */
export interface CopyJob {
  source: string;
  /** Real path in the rootfs, its parent already resolved inside the root and nothing at the path itself. */
  target: string;
  /** Bytes the layer holds for it: a source of another size is refused. */
  size: number;
  /** Member name, for errors. */
  name: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
}

/** What the worker reports: jobs done so far, or the first failure (after which it copies nothing more). */
type CopyFailure = { name: string; source: string; message: string; changed?: { size: number; copied: number } };
type Report = { done: number } | { failed: CopyFailure };

/**
 * The worker's code: plain JavaScript over node:fs, so it runs the same from dist/, the bundle and vitest's sources.
 * Creating a file is the costly part of applying a change (inode allocation in the kernel, on one thread whatever
 * the concurrency), so it gets a thread of its own rather than blocking the main one or the libuv pool gzip needs.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const flags = fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE;
let failed = false;
parentPort.on('message', (jobs) => {
  if (failed) return;
  for (const j of jobs) {
    try {
      // EXCL: like applyLayer's O_EXCL, never writes through whatever may have appeared at the path.
      fs.copyFileSync(j.source, j.target, flags);
      const copied = fs.lstatSync(j.target).size;
      if (copied !== j.size) {
        failed = true;
        parentPort.postMessage({ failed: { name: j.name, source: j.source, message: 'size', changed: { size: j.size, copied } } });
        return;
      }
      if (workerData.asRoot) fs.lchownSync(j.target, j.uid, j.gid);
      fs.chmodSync(j.target, j.mode);
      fs.utimesSync(j.target, j.mtime, j.mtime);
    } catch (err) {
      failed = true;
      parentPort.postMessage({ failed: { name: j.name, source: j.source, message: String(err && err.message || err) } });
      return;
    }
  }
  parentPort.postMessage({ done: jobs.length });
});
`;

// Jobs are sent in batches: one message per file would cost more than many of the copies.
const BATCH = 128;

/**
 * Copies files into a rootfs on a worker thread, in submission order, then sets their owner (as root), mode and
 * times as TreeApplier's setMeta does. `copy` only queues; `drain` waits for everything queued and throws the first
 * failure. The caller must drain before anything could remove or replace a queued target or its parents.
 */
export class FileCopier {
  private readonly worker: Worker;
  private batch: CopyJob[] = [];
  private sent = 0;
  private done = 0;
  private failure: Error | undefined;
  private waiters: Array<() => void> = [];

  constructor(
    /** Prefix of error messages, e.g. `layer sha256:…`. */
    private readonly subject: string,
    asRoot: boolean,
  ) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { asRoot } });
    this.worker.on('message', (report: Report) => {
      if ('done' in report) this.done += report.done;
      else this.failure ??= this.failed(report.failed);
      this.wake();
    });
    this.worker.on('error', (err) => {
      this.failure ??= new KilnError('BUILD_FAILED', `${this.subject}: copying files failed: ${errorMessage(err)}`, { cause: err });
      this.wake();
    });
    this.worker.on('exit', () => {
      this.failure ??= new KilnError('BUILD_FAILED', `${this.subject}: the file copy thread stopped early`);
      this.wake();
    });
  }

  /** Queues a copy; a failure of an earlier one is thrown here or by `drain`. */
  copy(job: CopyJob): void {
    if (this.failure) throw this.failure;
    this.batch.push(job);
    if (this.batch.length >= BATCH) this.flush();
  }

  /** Resolves once every queued copy is done; throws the first failure. */
  async drain(): Promise<void> {
    this.flush();
    while (this.failure === undefined && this.done < this.sent) await new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.failure) throw this.failure;
  }

  /** Stops the worker (after a drain, or to abandon the queue on failure: it copies nothing more once told). */
  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }

  private flush(): void {
    if (this.batch.length === 0 || this.failure) return;
    this.worker.postMessage(this.batch);
    this.sent += this.batch.length;
    this.batch = [];
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private failed(f: CopyFailure): KilnError {
    if (f.changed) {
      return new KilnError(
        'BUILD_FAILED',
        `file ${f.source} for layer entry "${f.name}" changed size after its layer was written (${f.changed.size} → ${f.changed.copied} bytes); rebuild without changing it`,
      );
    }
    return new KilnError('BUILD_FAILED', `${this.subject}: entry "${f.name}" could not be extracted: ${f.message}`);
  }
}
