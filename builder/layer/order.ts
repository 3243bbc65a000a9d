/** Name of the opaque-directory marker (image-spec layer.md § Opaque Whiteout). */
export const OPAQUE_MARKER = '.wh..wh..opq';
/** Prefix of a whiteout file's name (image-spec layer.md § Whiteouts). */
export const WHITEOUT_PREFIX = '.wh.';

/**
 * Order of entries in a layer: component by component, each compared as UTF-8 bytes, so a directory comes right
 * before its children. The opaque marker sorts first among its siblings so that even an extractor that handles it
 * the moment it appears only hides what lower layers had.
 */
export function compareLayerPaths(a: string, b: string): number {
  if (a === b) return 0;
  const pa = a.split('/');
  const pb = b.split('/');
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const x = pa[i] as string;
    const y = pb[i] as string;
    if (x === y) continue;
    if (x === OPAQUE_MARKER) return -1;
    if (y === OPAQUE_MARKER) return 1;
    return compareUtf8(x, y);
  }
  return pa.length - pb.length;
}

/** UTF-8 byte order without encoding: it equals UTF-16 code-unit order except where surrogates are involved. */
function compareUtf8(x: string, y: string): number {
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const cx = x.charCodeAt(i);
    const cy = y.charCodeAt(i);
    if (cx === cy) continue;
    if (cx < 0xd800 && cy < 0xd800) return cx - cy;
    return Buffer.compare(Buffer.from(x.slice(i)), Buffer.from(y.slice(i)));
  }
  return x.length - y.length;
}
