import type { Platform } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import type { Target } from '../oci/target.js';
import { diveEfficiency, diveNumbers, type DiveNumbers } from './efficiency.js';
import type { FileInfo, FileTree } from './filetree.js';
import { loadImage, type LayerProgress } from './image.js';
import { overlayWaste, type LayerChanges, type WasteGroup } from './overlay.js';
import { suggest, type Suggestion } from './suggestions.js';

/** One entry of dive's export `fileList` (its FileInfo JSON). */
export interface DiveFileInfo {
  path: string;
  typeFlag: number;
  linkName: string;
  size: number;
  fileMode: number;
  uid: number;
  gid: number;
  isDir: boolean;
}

/** One layer of the report. */
export interface LayerReport extends LayerChanges {
  index: number;
  digest: Digest;
  mediaType: string;
  compressedSize: number;
  diffId: Digest;
  /** dive's layer size: Σ tar header sizes. */
  sizeBytes: number;
  /** Tar entries. */
  entries: number;
  /** `created_by` without `/bin/sh -c ` (dive's command), or `(missing)`. */
  command: string;
  createdBy: string;
  /** dive's export `digestId`: the diff_id when a history entry pairs with the layer, else "". */
  historyDigest: string;
  /** dive's per-layer file list (only with `fileLists: true`). */
  fileList?: DiveFileInfo[];
}

/** Waste as an overlay sees it, scored like dive's numbers. */
export interface CorrectedNumbers {
  /** (size − wasted) ÷ size; 1 for an empty image. */
  efficiency: number;
  sizeBytes: number;
  wastedBytes: number;
  /** Wasted bytes whose removal a layer after the first caused (the user's doing). */
  userWastedBytes: number;
  /** userWastedBytes ÷ the size of all layers but the first (NaN for 0/0, as dive's). */
  userWastedPercent: number;
  /** Wasted bytes by writer, remover and cause, largest first. */
  waste: WasteGroup[];
}

/** What `kiln analyze` reports (plain data; NaN serialises as null). */
export interface AnalysisResult {
  image: { name: string; digest: Digest; platform: string };
  /** dive v0.13.1's numbers, quirks included. */
  dive: DiveNumbers;
  corrected: CorrectedNumbers;
  layers: LayerReport[];
  suggestions: Suggestion[];
  /** Where dive's own count stops early, and similar oddities of the input. */
  warnings: string[];
}

/** Options of `analyze`. */
export interface AnalyzeOptions {
  target: Target;
  platform?: Platform | undefined;
  /** Include dive's per-layer `fileList` (for the `--json` export); costs memory per path. */
  fileLists?: boolean;
  concurrency?: number;
  onProgress?: (event: LayerProgress) => void;
}

/** Reads every layer of an image once and computes dive's numbers, the overlay-corrected ones and suggestions. */
export async function analyze(options: AnalyzeOptions): Promise<AnalysisResult> {
  const image = await loadImage(options);
  const trees = image.layers.map((l) => l.contents.tree);
  const efficiency = diveEfficiency(trees);
  const dive = diveNumbers(trees, efficiency);
  const overlay = overlayWaste(image.layers.map((l) => l.contents));
  const commands = image.layers.map((l) => l.history.command);
  const layers = image.layers.map((l, i): LayerReport => {
    const report: LayerReport = {
      index: i,
      digest: l.descriptor.digest,
      mediaType: l.descriptor.mediaType,
      compressedSize: l.descriptor.size,
      diffId: l.diffId,
      sizeBytes: l.contents.tree.fileSize,
      entries: l.contents.entries,
      command: l.history.command,
      createdBy: l.history.createdBy,
      historyDigest: l.history.present ? l.diffId : '',
      ...(overlay.layers[i] as LayerChanges),
    };
    if (options.fileLists) report.fileList = fileList(l.contents.tree);
    return report;
  });
  const userWastedBytes = overlay.groups.filter((g) => g.removedBy > 0).reduce((sum, g) => sum + g.bytes, 0);
  const corrected: CorrectedNumbers = {
    efficiency: dive.sizeBytes === 0 ? 1 : (dive.sizeBytes - overlay.wastedBytes) / dive.sizeBytes,
    sizeBytes: dive.sizeBytes,
    wastedBytes: overlay.wastedBytes,
    userWastedBytes,
    userWastedPercent: userWastedBytes / dive.userSizeBytes,
    waste: overlay.groups,
  };
  return {
    image: { name: image.name, digest: image.digest, platform: image.platform },
    dive,
    corrected,
    layers,
    suggestions: suggest(overlay, commands),
    warnings: efficiency.warnings,
  };
}

/** dive's export fileList: every node of the layer tree, children first, in name order. */
function fileList(tree: FileTree): DiveFileInfo[] {
  const out: DiveFileInfo[] = [];
  tree.visitChildFirst((node) => {
    out.push(diveFileInfo(node.info));
  });
  return out;
}

function diveFileInfo(info: FileInfo): DiveFileInfo {
  return {
    path: info.path,
    typeFlag: info.typeflag,
    linkName: info.linkname,
    size: info.size,
    fileMode: info.mode,
    uid: info.uid,
    gid: info.gid,
    isDir: info.isDir,
  };
}
