import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

/** path → type, mode, owner, content or link target: what an observer of the tree sees (mtimes left out). */
export async function snapshotTree(dir: string, rel = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    const abs = join(dir, name);
    const path = rel ? `${rel}/${name}` : name;
    const st = await lstat(abs);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      out[path] = `dir ${mode} ${st.uid}:${st.gid}`;
      Object.assign(out, await snapshotTree(abs, path));
    } else if (st.isSymbolicLink()) out[path] = `link -> ${await readlink(abs)}`;
    else if (st.isFIFO()) out[path] = `fifo ${mode}`;
    else out[path] = `file ${mode} ${st.uid}:${st.gid} nlink=${st.nlink} ${await readFile(abs, 'utf8')}`;
  }
  return out;
}
