import { closeSync, createReadStream, constants as fsConstants, openSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { decompressStream, detectCompression } from '../../oci/compression.js';
import { KilnError, errorMessage } from '../../oci/errors.js';
import { LayerTarReader, type LayerTarEntry } from '../layer/tar-reader.js';
import { TreeApplier, realRoot, type MemberNode } from './tree-applier.js';

/** What to apply where. */
export interface ApplyLayerOptions {
  /** Existing directory the layer is extracted onto. */
  rootfs: string;
  /** Layer blob: gzip, zstd or plain tar (detected from its first bytes). */
  blob: string;
  /** Names the layer in errors, e.g. its digest. */
  name: string;
  /** Size-bomb stops: total bytes of file data (default 64 GiB) and tar members (default 1,000,000). */
  limits?: { maxBytes?: number; maxEntries?: number };
}

const DEFAULT_MAX_BYTES = 64 * 1024 ** 3;
const DEFAULT_MAX_ENTRIES = 1_000_000;

/**
 * Extracts a layer onto a rootfs as docker does: whiteouts delete, opaque markers hide what lower layers had in a
 * directory (whatever their position in the tar), an entry replaces whatever was at its path. Every path is resolved
 * inside the root (symlinks followed within it) and anything that would land outside it, and any device, is refused
 * (UNSAFE_PATH) before it is written. FIFOs are made with mkfifo(1), as node cannot.
 */
export async function applyLayer(options: ApplyLayerOptions): Promise<{ entries: number; bytes: number }> {
  const root = await realRoot(options.rootfs, options.name);
  const head = Buffer.alloc(4);
  const fh = await open(options.blob, 'r').catch((err: unknown) => {
    throw new KilnError('NOT_FOUND', `layer ${options.name}: blob ${options.blob} can't be opened: ${errorMessage(err)}`, { cause: err });
  });
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  const applier = new Applier(root, options);
  await pipeline(createReadStream(options.blob), decompressStream(detectCompression(head)), async (source: AsyncIterable<Buffer>) => {
    const reader = new LayerTarReader(source, options.name);
    for (let entry = await reader.next(); entry !== null; entry = await reader.next()) await applier.apply(entry, reader);
    // Padding after the end-of-archive blocks counts toward the byte budget, so trailing junk can't be a bomb.
    await reader.drain(applier.bytesLeft());
  });
  await applier.finish();
  return { entries: applier.entries, bytes: applier.bytes };
}

/** Feeds tar members to the shared {@link TreeApplier}, enforcing the size-bomb limits and streaming file bodies. */
class Applier {
  entries = 0;
  bytes = 0;
  private readonly tree: TreeApplier;
  private readonly maxBytes: number;
  private readonly maxEntries: number;

  constructor(root: string, options: ApplyLayerOptions) {
    this.tree = new TreeApplier(root, `layer ${options.name}`);
    this.maxBytes = options.limits?.maxBytes ?? DEFAULT_MAX_BYTES;
    this.maxEntries = options.limits?.maxEntries ?? DEFAULT_MAX_ENTRIES;
  }

  async apply(entry: LayerTarEntry, reader: LayerTarReader): Promise<void> {
    if (++this.entries > this.maxEntries) {
      throw new KilnError('TOO_LARGE', `${this.tree.subject} has more than ${this.maxEntries} entries; raise the limit if the image is trusted`);
    }
    await this.tree.apply(entry.name, this.node(entry, reader), entry);
  }

  /** What is left of the byte budget. */
  bytesLeft(): number {
    return this.maxBytes - this.bytes;
  }

  finish(): Promise<void> {
    return this.tree.finish();
  }

  private node(entry: LayerTarEntry, reader: LayerTarReader): MemberNode {
    const type = entry.typeflag;
    if (type === '3' || type === '4') throw this.tree.unsafe(entry.name, `is a ${type === '3' ? 'character' : 'block'} device; layers may not create devices`);
    switch (type) {
      case '5':
        return { kind: 'directory' };
      case '1':
        return { kind: 'hardlink', linkname: entry.linkname };
      case '2':
        return { kind: 'symlink', linkname: entry.linkname };
      case '6':
        return { kind: 'fifo' };
      case '0':
      case '\0':
      case '7':
        return { kind: 'file', write: (target) => this.writeFile(entry, target, reader) };
      default:
        throw new KilnError('VALIDATION', `${this.tree.subject}: entry "${entry.name}" has tar type '${type}', which layers do not use`);
    }
  }

  private async writeFile(entry: LayerTarEntry, target: string, reader: LayerTarReader): Promise<void> {
    if (this.bytes + entry.size > this.maxBytes) {
      throw new KilnError('TOO_LARGE', `${this.tree.subject} holds more than ${this.maxBytes} bytes of files (at "${entry.name}"); raise the limit if the image is trusted`);
    }
    this.bytes += entry.size;
    // O_EXCL|O_NOFOLLOW: the path was just cleared, so anything there now is not ours to write through.
    const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
    const fd = openSync(target, flags, 0o600);
    try {
      for await (const piece of reader.body()) {
        let offset = 0;
        while (offset < piece.length) offset += writeSync(fd, piece, offset);
      }
    } finally {
      closeSync(fd);
    }
  }
}
