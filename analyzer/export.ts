import type { AnalysisResult, DiveFileInfo } from './analyze.js';
import { digestHex } from '../oci/digest.js';
import type { CiEvaluation } from './rules.js';

// dive's `--json FILE` export (runtime/export/*.go): `layer[]` and `image{…}` with dive's field names and order,
// plus a `kiln` object with what dive does not compute.

/** One layer of dive's export. */
export interface DiveExportLayer {
  index: number;
  id: string;
  digestId: string;
  sizeBytes: number;
  command: string;
  fileList: DiveFileInfo[];
}

/** dive's export document, with Kiln's additions under `kiln`. */
export interface DiveExport {
  layer: DiveExportLayer[];
  image: {
    sizeBytes: number;
    inefficientBytes: number;
    efficiencyScore: number;
    fileReference: Array<{ count: number; sizeBytes: number; file: string }>;
  };
  kiln?: {
    image: AnalysisResult['image'];
    userSizeBytes: number;
    userWastedPercent: number;
    corrected: AnalysisResult['corrected'];
    layers: Array<Omit<AnalysisResult['layers'][number], 'fileList'>>;
    suggestions: AnalysisResult['suggestions'];
    warnings: string[];
    ci?: CiEvaluation;
  };
}

/** Builds dive's export from an analysis (made with `fileLists: true` for the per-layer lists). */
export function diveExport(result: AnalysisResult, options: { ci?: CiEvaluation | undefined; extras?: boolean } = {}): DiveExport {
  const doc: DiveExport = {
    layer: result.layers.map((l) => ({
      index: l.index,
      // dive names a layer by its archive member (`<id>/layer.tar`); Kiln reads blobs, so the blob digest's hex.
      id: digestHex(l.digest),
      digestId: l.historyDigest,
      sizeBytes: l.sizeBytes,
      command: l.command,
      fileList: l.fileList ?? [],
    })),
    image: {
      sizeBytes: result.dive.sizeBytes,
      inefficientBytes: result.dive.wastedBytes,
      efficiencyScore: result.dive.efficiency,
      fileReference: result.dive.inefficientFiles.map((f) => ({ count: f.count, sizeBytes: f.sizeBytes, file: f.path })),
    },
  };
  if (options.extras !== false) {
    doc.kiln = {
      image: result.image,
      userSizeBytes: result.dive.userSizeBytes,
      userWastedPercent: result.dive.userWastedPercent,
      corrected: result.corrected,
      layers: result.layers.map(({ fileList: _omitted, ...rest }) => rest),
      suggestions: result.suggestions,
      warnings: result.warnings,
      ...(options.ci ? { ci: options.ci } : {}),
    };
  }
  return doc;
}

/** JSON as Go's json.MarshalIndent(v, "", "  ") writes it: `<`, `>`, `&`, U+2028/9 escaped; NaN/±Inf as null. */
export function goJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
