import { goCompareStrings, goPathClean } from './go-path.js';

// One layer as dive sees it (dive/filetree: file_tree.go, file_node.go, file_info.go): a tree of path
// components whose nodes carry the tar header of their path. Whiteouts `.wh.NAME` stay nodes under that
// name; opaque markers `.wh..wh..opq` (any `.wh..wh..` name) are never added.

/** Tar metadata of one path (dive's FileInfo; `mode` is Go's fs.FileMode, `typeflag` the header byte). */
export interface FileInfo {
  readonly path: string;
  readonly typeflag: number;
  readonly linkname: string;
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly isDir: boolean;
}

/** The payload of a path component that no tar header named (an implied parent directory). */
export const IMPLIED: FileInfo = Object.freeze({ path: '', typeflag: 0, linkname: '', size: 0, mode: 0, uid: 0, gid: 0, isDir: false });

/** Prefix that marks a whiteout (OCI image-spec layer.md § Whiteouts). */
export const WHITEOUT_PREFIX = '.wh.';
/** Prefix of the special whiteouts (`.wh..wh..opq`), which dive drops. */
export const DOUBLE_WHITEOUT_PREFIX = '.wh..wh..';

/** A path component with its tar header and its children. */
export class FileNode {
  readonly name: string;
  readonly parent: FileNode | undefined;
  children: Map<string, FileNode> | undefined;
  info: FileInfo;
  private memo: string | undefined;

  constructor(name: string, parent: FileNode | undefined, info: FileInfo) {
    this.name = name;
    this.parent = parent;
    this.info = info;
  }

  /** No children: dive counts only leaves (files, links, empty directories, whiteouts). */
  isLeaf(): boolean {
    return this.children === undefined || this.children.size === 0;
  }

  /** A name starting with `.wh.`. */
  isWhiteout(): boolean {
    return this.name.startsWith(WHITEOUT_PREFIX);
  }

  /** dive's `Path()`: `/a/b`, with the leaf's `.wh.` prefix removed (so a whiteout names what it deletes). */
  path(): string {
    if (this.memo === undefined) {
      const names: string[] = [];
      for (let node: FileNode | undefined = this; node?.parent !== undefined; node = node.parent) {
        names.push(node === this && node.name.startsWith(WHITEOUT_PREFIX) ? node.name.slice(WHITEOUT_PREFIX.length) : node.name);
      }
      this.memo = `/${names.reverse().join('/')}`;
    }
    return this.memo.split('//').join('/');
  }

  /** Children in Go's sort.Strings order of their names. */
  sortedChildren(): FileNode[] {
    if (!this.children) return [];
    return [...this.children.values()].sort((a, b) => goCompareStrings(a.name, b.name));
  }

  /** Every node of this subtree, deepest first, parents after their children (dive's VisitDepthChildFirst). */
  visitChildFirst(visit: (node: FileNode) => boolean | void, only?: (node: FileNode) => boolean): boolean {
    for (const child of this.sortedChildren()) {
      if (!child.visitChildFirst(visit, only)) return false;
    }
    if (this.parent === undefined) return true;
    if (only && !only(this)) return true;
    return visit(this) !== false;
  }

  /** Deep copy under `parent`. */
  copy(parent: FileNode | undefined): FileNode {
    const node = new FileNode(this.name, parent, this.info);
    if (this.children) {
      node.children = new Map();
      for (const [name, child] of this.children) node.children.set(name, child.copy(node));
    }
    return node;
  }
}

/** One layer's paths (dive's FileTree) and the sum of its tar header sizes. */
export class FileTree {
  root = new FileNode('', undefined, IMPLIED);
  /** Sum of the tar header sizes of the layer's entries: dive's layer size. */
  fileSize = 0;

  /** dive's `AddPath`: creates missing components (implied payload) and sets the payload of the last one. */
  addPath(rawPath: string, info: FileInfo): FileNode | undefined {
    const clean = goPathClean(rawPath);
    if (clean === '.') return undefined;
    const names = clean.replace(/^\/+|\/+$/g, '').split('/');
    let node = this.root;
    for (const [i, name] of names.entries()) {
      if (name === '') continue;
      let child = node.children?.get(name);
      if (!child) {
        if (name.startsWith(DOUBLE_WHITEOUT_PREFIX)) return undefined;
        child = new FileNode(name, node, IMPLIED);
        (node.children ??= new Map()).set(name, child);
      }
      node = child;
      if (i === names.length - 1) node.info = info;
    }
    return node;
  }

  /** dive's `GetNode`: the node at a slash-separated path, or undefined. */
  getNode(path: string): FileNode | undefined {
    let node = this.root;
    for (const name of path.replace(/^\/+|\/+$/g, '').split('/')) {
      if (name === '') continue;
      const child = node.children?.get(name);
      if (!child) return undefined;
      node = child;
    }
    return node;
  }

  /** dive's `RemovePath`: false when the path does not exist (or is the root). */
  removePath(path: string): boolean {
    const node = this.getNode(path);
    if (!node?.parent) return false;
    node.parent.children?.delete(node.name);
    return true;
  }

  /** Deep copy (the payloads are immutable and shared). */
  copy(): FileTree {
    const tree = new FileTree();
    tree.root = this.root.copy(undefined);
    tree.fileSize = this.fileSize;
    return tree;
  }

  /** dive's `Stack`: applies `upper` on this tree (whiteouts remove, everything else is added); returns failed paths. */
  stack(upper: FileTree): string[] {
    const failed: string[] = [];
    upper.root.visitChildFirst((node) => {
      if (node.isWhiteout()) {
        if (!this.removePath(node.path())) failed.push(node.path());
      } else {
        this.addPath(node.path(), node.info);
      }
    });
    return failed;
  }

  /** Every node but the root, deepest first (dive's VisitDepthChildFirst); false when `visit` stopped it. */
  visitChildFirst(visit: (node: FileNode) => boolean | void, only?: (node: FileNode) => boolean): boolean {
    return this.root.visitChildFirst(visit, only);
  }
}
