/**
 * One entry of a layer as the builder produces it (a COPY, a RUN's change, an ADD'ed archive) before it is
 * written as tar. Paths are relative to the root, '/'-separated, without a leading '/' or any '.'/'..' part.
 */
export type LayerEntry =
  | (EntryMeta & {
      type: 'file';
      /** Where the content is read from at write time. */
      source: string;
      size: number;
      /** The source carries xattrs the layer leaves out (overlayfs' own, SELinux labels): never move it into a rootfs. */
      foreignXattrs?: boolean;
    })
  | (EntryMeta & { type: 'directory' })
  | (EntryMeta & { type: 'symlink'; linkname: string })
  /** A hard link to another entry of the same layer; `linkname` is that entry's path. */
  | (EntryMeta & { type: 'hardlink'; linkname: string })
  /** Deletion of `path` in the layers below: written as `.wh.<name>` beside it. */
  | { type: 'whiteout'; path: string }
  /** `path` (a directory, also listed as an entry) hides everything below it: written as `<path>/.wh..wh..opq`. */
  | { type: 'opaque'; path: string };

export interface EntryMeta {
  path: string;
  /** Permission bits incl. setuid/setgid/sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch; the writer clamps it to the build's SOURCE_DATE_EPOCH. */
  mtime: number;
  /** Extended attributes kept in the layer (e.g. security.capability), as PAX SCHILY.xattr records. */
  xattrs?: Record<string, Buffer>;
}
