import type { FileNode, FileTree } from './filetree.js';

// dive v0.13.1's score (dive/filetree/efficiency.go, dive/image/image.go), quirks included:
// - only leaves of each layer's tree count (a directory with children in a layer is not counted there);
// - a whiteout counts 0 bytes unless what it deletes was a directory (then the sizes of that whole subtree in
//   the layers below, stacked without honouring opaque markers);
// - a whiteout whose target is not in the layers below stops the count of the rest of that layer, and the path
//   it names (if new) keeps its initial minimum of -1, which lowers the score;
// - wasted bytes are all copies of every path seen more than once, the smallest one included.

/** dive's EfficiencyData: one path's copies across layers. */
export interface PathEfficiency {
  path: string;
  /** Times the path was seen (leaves of layer trees). */
  count: number;
  /** Sum of the sizes of all copies. */
  cumulativeSize: number;
  /** The smallest copy, or -1 when dive created the entry and then stopped (see above). */
  minSize: number;
  /** Layers (0-based) that hold a copy, in order. */
  layers: number[];
}

/** dive's numbers for one image. */
export interface DiveEfficiency {
  /** Σ smallest size per path ÷ Σ all sizes; 1 when nothing was counted. */
  score: number;
  /** Paths seen at least twice, largest cumulative size first (as dive's CI report and export list them). */
  inefficiencies: PathEfficiency[];
  /** Layers whose count dive stops early, and why. */
  warnings: string[];
}

/** dive's image-level figures (AnalysisResult). */
export interface DiveNumbers {
  efficiency: number;
  /** Σ layer sizes (each = Σ tar header sizes). */
  sizeBytes: number;
  /** Σ sizes of all layers but the first. */
  userSizeBytes: number;
  /** Σ cumulative sizes of the inefficient paths. */
  wastedBytes: number;
  /** wastedBytes ÷ userSizeBytes: NaN for 0/0 and Infinity for x/0, as Go's float division gives. */
  userWastedPercent: number;
  inefficientFiles: Array<{ count: number; sizeBytes: number; path: string }>;
}

/** dive's StackTreeRange(trees, 0, k-1), built once and advanced layer by layer (stacking is sequential). */
class LowerLayers {
  private stacked: FileTree;
  private through = -1;

  constructor(private readonly trees: readonly FileTree[]) {
    // StackTreeRange starts from a copy of the first tree and then stacks trees[0..k-1] on it (trees[0] twice).
    this.stacked = (trees[0] as FileTree).copy();
  }

  /** The stacked tree of layers 0..k-1 (for k = 0: a copy of layer 0 itself, as dive's range 0..-1 gives). */
  below(k: number): FileTree {
    while (this.through < k - 1) {
      this.through++;
      this.stacked.stack(this.trees[this.through] as FileTree);
    }
    return this.stacked;
  }
}

/** dive's `Efficiency(trees)`: the score and the paths seen more than once. */
export function diveEfficiency(trees: readonly FileTree[]): DiveEfficiency {
  const byPath = new Map<string, PathEfficiency>();
  const matches: PathEfficiency[] = [];
  const warnings: string[] = [];
  if (trees.length === 0) return { score: 1, inefficiencies: [], warnings };
  const lower = new LowerLayers(trees);
  trees.forEach((tree, k) => {
    const completed = tree.visitChildFirst(
      (node) => {
        const path = node.path();
        let data = byPath.get(path);
        if (!data) byPath.set(path, (data = { path, count: 0, cumulativeSize: 0, minSize: -1, layers: [] }));
        let size = node.info.size;
        if (node.isWhiteout()) {
          const previous = lower.below(k).getNode(path);
          if (!previous) {
            warnings.push(`layer ${k + 1}: whiteout ${path} deletes nothing in the layers below; dive stops counting this layer here`);
            return false;
          }
          size = previous.info.isDir ? subtreeSize(previous) : 0;
        }
        data.cumulativeSize += size;
        if (data.minSize < 0 || size < data.minSize) data.minSize = size;
        data.count++;
        data.layers.push(k);
        if (data.count === 2) matches.push(data);
        return true;
      },
      (node) => node.isLeaf(),
    );
    if (!completed) return;
  });
  let minimum = 0;
  let discovered = 0;
  for (const data of byPath.values()) {
    minimum += data.minSize;
    discovered += data.cumulativeSize;
  }
  // dive lists the largest first. Its Go sort is unstable, so among equal sizes its order is arbitrary; Kiln
  // orders ties by path so the report is deterministic (same sizes and paths as dive, ties possibly reordered).
  matches.sort((a, b) => b.cumulativeSize - a.cumulativeSize || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { score: discovered === 0 ? 1 : minimum / discovered, inefficiencies: matches, warnings };
}

/** Sum of sizes of a node and everything under it (dive's whiteout sizer). */
function subtreeSize(node: FileNode): number {
  let total = 0;
  const visit = (n: FileNode): void => {
    total += n.info.size;
    n.children?.forEach(visit);
  };
  visit(node);
  return total;
}

/** dive's AnalysisResult numbers from the layer trees (layer size = the tree's Σ tar header sizes). */
export function diveNumbers(trees: readonly FileTree[], efficiency: DiveEfficiency): DiveNumbers {
  const sizeBytes = trees.reduce((sum, t) => sum + t.fileSize, 0);
  const userSizeBytes = sizeBytes - (trees[0]?.fileSize ?? 0);
  const wastedBytes = efficiency.inefficiencies.reduce((sum, d) => sum + d.cumulativeSize, 0);
  return {
    efficiency: efficiency.score,
    sizeBytes,
    userSizeBytes,
    wastedBytes,
    userWastedPercent: wastedBytes / userSizeBytes,
    inefficientFiles: efficiency.inefficiencies.map((d) => ({ count: d.count, sizeBytes: d.cumulativeSize, path: d.path })),
  };
}
