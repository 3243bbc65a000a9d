import type { FileNode } from './filetree.js';
import { IMPLIED } from './filetree.js';
import type { LayerContents } from './layer-reader.js';

// Waste as an overlay filesystem sees it (OCI image-spec layer.md § Whiteouts): a byte is wasted when a later
// layer shadows the path that holds it, deletes it with a whiteout (a whole directory at once), hides it with an
// opaque directory, or when the same tar writes the path twice. The copy that survives is never waste.

/** How a wasted copy stopped being visible. */
export type WasteKind = 'overwritten' | 'deleted' | 'opaque' | 'duplicate';

/** Entries and bytes. */
export interface Tally {
  count: number;
  bytes: number;
}

/** What one layer does to the filesystem below it (non-directory entries counted; bytes are tar header sizes). */
export interface LayerChanges {
  /** New paths. */
  added: Tally;
  /** Paths that replace something a lower layer wrote (the new bytes). */
  changed: Tally;
  /** Lower-layer entries removed by this layer's whiteouts and opaque directories (the removed bytes). */
  deleted: Tally;
  /** Bytes this layer wrote that a later layer (or itself) shadows or deletes. */
  wastedBytes: number;
}

/** Wasted bytes grouped by the layer that wrote them, the layer that removed them and how. */
export interface WasteGroup {
  writtenBy: number;
  removedBy: number;
  kind: WasteKind;
  count: number;
  bytes: number;
  /** The largest paths of the group (at most 5). */
  examples: Array<{ path: string; size: number }>;
}

/** A surviving non-directory entry, for the cache heuristics. */
export interface Survivor {
  path: string;
  size: number;
  layer: number;
}

/** The overlay pass over all layers. */
export interface OverlayResult {
  layers: LayerChanges[];
  groups: WasteGroup[];
  wastedBytes: number;
  survivors: Survivor[];
}

const EXAMPLES = 5;

/** A path of the merged filesystem and the layer that wrote its current entry. */
class Merged {
  children: Map<string, Merged> | undefined;
  constructor(
    public layer: number,
    public size: number,
    public isDir: boolean,
  ) {}
}

/** Applies the layers in order, as a container runtime would, and charges every lost byte to its writer. */
export function overlayWaste(layers: readonly LayerContents[]): OverlayResult {
  const root = new Merged(-1, 0, true);
  const changes: LayerChanges[] = layers.map(() => ({ added: tally(), changed: tally(), deleted: tally(), wastedBytes: 0 }));
  const groups = new Map<string, WasteGroup>();
  let wastedBytes = 0;

  const waste = (path: string, node: Merged, removedBy: number, kind: WasteKind): void => {
    const writer = changes[node.layer];
    // Directory entries carry no bytes; counting them would bury the files in every group.
    if (node.layer < 0 || !writer || (node.isDir && node.size === 0)) return;
    writer.wastedBytes += node.size;
    wastedBytes += node.size;
    const key = `${node.layer}/${removedBy}/${kind}`;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { writtenBy: node.layer, removedBy, kind, count: 0, bytes: 0, examples: [] }));
    group.count++;
    group.bytes += node.size;
    addExample(group.examples, path, node.size);
  };
  /** Charges a whole subtree (the node included), counting its non-directory entries in `deleted` when given. */
  const wasteTree = (path: string, node: Merged, removedBy: number, kind: WasteKind, deleted: Tally | undefined): void => {
    node.children?.forEach((child, name) => wasteTree(`${path}/${name}`, child, removedBy, kind, deleted));
    if (deleted && !node.isDir && node.layer >= 0) {
      deleted.count++;
      deleted.bytes += node.size;
    }
    waste(path, node, removedBy, kind);
  };

  layers.forEach((layer, l) => {
    const mine = changes[l] as LayerChanges;
    for (const dup of layer.duplicates) waste(absolute(dup.path), new Merged(l, dup.size, false), l, 'duplicate');
    for (const dir of layer.opaqueDirs) {
      const node = lookup(root, dir);
      node?.children?.forEach((child, name) => wasteTree(`${absolute(dir)}/${name}`.replace('//', '/'), child, l, 'opaque', mine.deleted));
      if (node) node.children = undefined;
    }
    layer.tree.visitChildFirst((entry) => {
      if (!entry.isWhiteout() || entry.name.startsWith('.wh..wh.')) return;
      const target = entry.path();
      const parent = lookup(root, parentOf(target));
      const node = parent?.children?.get(baseOf(target));
      if (!parent || !node) return;
      parent.children?.delete(baseOf(target));
      wasteTree(target, node, l, 'deleted', mine.deleted);
    });
    visitParentFirst(layer.tree.root, (entry) => {
      if (entry.isWhiteout() || entry.info === IMPLIED) return;
      write(root, entry, l, mine, wasteTree);
    });
  });

  const survivors: Survivor[] = [];
  const collect = (path: string, node: Merged): void => {
    node.children?.forEach((child, name) => collect(`${path}/${name}`, child));
    if (!node.isDir && node.layer >= 0) survivors.push({ path, size: node.size, layer: node.layer });
  };
  root.children?.forEach((child, name) => collect(`/${name}`, child));
  const sortedGroups = [...groups.values()].sort((a, b) => b.bytes - a.bytes || a.writtenBy - b.writtenBy || a.removedBy - b.removedBy);
  return { layers: changes, groups: sortedGroups, wastedBytes, survivors };
}

type WasteTree = (path: string, node: Merged, removedBy: number, kind: WasteKind, deleted: Tally | undefined) => void;

/** Puts one entry of layer `l` into the merged filesystem, charging what it shadows. */
function write(root: Merged, entry: FileNode, l: number, mine: LayerChanges, wasteTree: WasteTree): void {
  const path = entry.path();
  const names = path.split('/').filter((n) => n !== '');
  let dir = root;
  let at = '';
  for (const name of names.slice(0, -1)) {
    at += `/${name}`;
    let next = dir.children?.get(name);
    if (next && !next.isDir) {
      // A file where this layer needs a directory: the runtime replaces it.
      wasteTree(at, next, l, 'overwritten', undefined);
      next = undefined;
    }
    if (!next) (dir.children ??= new Map()).set(name, (next = new Merged(-1, 0, true)));
    dir = next;
  }
  const name = names[names.length - 1];
  if (name === undefined) return;
  const info = entry.info;
  const existing = dir.children?.get(name);
  const node = new Merged(l, info.size, info.isDir);
  if (existing) {
    if (existing.isDir && info.isDir) node.children = existing.children;
    else existing.children?.forEach((child, n) => wasteTree(`${path}/${n}`, child, l, 'overwritten', undefined));
    existing.children = undefined;
    wasteTree(path, existing, l, 'overwritten', undefined);
  }
  (dir.children ??= new Map()).set(name, node);
  if (info.isDir) return;
  const bucket = existing && existing.layer >= 0 && existing.layer < l ? mine.changed : mine.added;
  bucket.count++;
  bucket.bytes += info.size;
}

function visitParentFirst(node: FileNode, visit: (node: FileNode) => void): void {
  if (node.parent) visit(node);
  node.children?.forEach((child) => visitParentFirst(child, visit));
}

function lookup(root: Merged, path: string): Merged | undefined {
  let node: Merged | undefined = root;
  for (const name of path.split('/')) {
    if (name === '') continue;
    node = node?.children?.get(name);
  }
  return node;
}

function absolute(path: string): string {
  return path.startsWith('/') ? path : `/${path}`;
}

function parentOf(path: string): string {
  return path.slice(0, Math.max(0, path.lastIndexOf('/')));
}

function baseOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function tally(): Tally {
  return { count: 0, bytes: 0 };
}

function addExample(examples: Array<{ path: string; size: number }>, path: string, size: number): void {
  if (examples.length >= EXAMPLES && (examples[examples.length - 1]?.size ?? 0) >= size) return;
  examples.push({ path, size });
  examples.sort((a, b) => b.size - a.size);
  if (examples.length > EXAMPLES) examples.pop();
}
