import { realpath } from 'node:fs/promises';
import { KilnError } from '../../oci/errors.js';
import type { LayerEntry } from '../layer/entry.js';
import { kindOf, listDirectory, metaOf } from '../layer/from-directory.js';
import { isLayerXattr, readXattrTree, type Xattrs } from './xattrs.js';

// overlayfs marks; "user." ones appear on mounts with the userxattr option (rootless).
const OPAQUE_KEYS = ['trusted.overlay.opaque', 'user.overlay.opaque'];
// Present when the upper depends on the lower in ways a plain tree walk can't capture.
const UNSUPPORTED_KEYS: Record<string, string> = {
  'trusted.overlay.redirect': 'a renamed lower directory (redirect_dir)',
  'user.overlay.redirect': 'a renamed lower directory (redirect_dir)',
  'trusted.overlay.metacopy': 'a metadata-only copy-up (metacopy)',
  'user.overlay.metacopy': 'a metadata-only copy-up (metacopy)',
};

/**
 * The change an overlayfs upper dir records (after a RUN), as layer entries in layer order: char devices 0/0 are
 * whiteouts, directories marked opaque get an opaque entry, files sharing an inode are hard links to the first of
 * them. security.capability and user.* xattrs are kept; files with others are marked `foreignXattrs`. Needs
 * getfattr (package "attr") to read xattrs.
 */
export async function diffOverlayUpper(options: { upper: string }): Promise<LayerEntry[]> {
  const upper = await realpath(options.upper);
  const xattrs = await readXattrTree(upper);
  const out: LayerEntry[] = [];
  const firstByInode = new Map<number, string>();
  const walk = async (abs: string, rel: string): Promise<void> => {
    for (const { name, child, st, linkname } of await listDirectory(abs)) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const attrs = xattrs.get(child) ?? {};
      for (const key of Object.keys(attrs)) {
        const why = UNSUPPORTED_KEYS[key];
        if (why) throw new KilnError('BUILD_FAILED', `${child} in overlay upper ${upper} is ${why}; mount the overlay with redirect_dir=off,metacopy=off`);
      }
      const meta = { ...metaOf(path, st), ...keptXattrs(attrs) };
      if (st.isCharacterDevice() && st.rdev === 0) {
        out.push({ type: 'whiteout', path });
      } else if (st.isDirectory()) {
        out.push({ ...meta, type: 'directory' });
        if (OPAQUE_KEYS.some((k) => attrs[k]?.toString('latin1') === 'y')) out.push({ type: 'opaque', path });
        await walk(child, path);
      } else if (linkname !== undefined) {
        out.push({ ...meta, type: 'symlink', linkname });
      } else if (st.isFile()) {
        const first = st.nlink > 1 ? firstByInode.get(st.ino) : undefined;
        if (first !== undefined) out.push({ ...meta, type: 'hardlink', linkname: first });
        else {
          if (st.nlink > 1) firstByInode.set(st.ino, path);
          // overlayfs' own marks (e.g. trusted.overlay.origin on a copy-up) must not follow the file into a rootfs.
          const foreign = Object.keys(attrs).some((k) => !isLayerXattr(k));
          out.push({ ...meta, type: 'file', source: child, size: st.size, ...(foreign ? { foreignXattrs: true } : {}) });
        }
      } else if (!st.isSocket()) {
        // Sockets are skipped as docker and containerd do; other special files have no LayerEntry form.
        throw new KilnError('BUILD_FAILED', `the step created ${path}, a ${kindOf(st)}, which kiln layers can't hold; remove it in the same RUN`);
      }
    }
  };
  await walk(upper, '');
  return out;
}

function keptXattrs(attrs: Xattrs): { xattrs?: Xattrs } {
  const kept = Object.entries(attrs).filter(([k]) => isLayerXattr(k));
  return kept.length > 0 ? { xattrs: Object.fromEntries(kept) } : {};
}
