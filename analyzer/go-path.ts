// Go's path.Clean, sort.Strings order and tar FileMode, which decide how dive names, orders and types tar entries.

/** Go's `path.Clean`: collapses `//`, drops `.` and resolves `..` lexically; `""` → `.`, keeps a leading `/`. */
export function goPathClean(path: string): string {
  if (path === '') return '.';
  const rooted = path.startsWith('/');
  const out: string[] = [];
  let leadingDotDots = 0;
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > leadingDotDots) out.pop();
      else if (!rooted) {
        out.push('..');
        leadingDotDots++;
      }
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

/** Go's string order (UTF-8 bytes = code points), which differs from JavaScript's UTF-16 `<` above U+FFFF. */
export function goCompareStrings(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate (a code point above U+FFFF) sorts after every BMP character in code-point order.
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx !== sy) return sx ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/** Go's fs.FileMode bits (io/fs), as dive's JSON export prints `fileMode`. */
const MODE = {
  dir: 2 ** 31,
  symlink: 2 ** 27,
  device: 2 ** 26,
  namedPipe: 2 ** 25,
  socket: 2 ** 24,
  setuid: 2 ** 23,
  setgid: 2 ** 22,
  charDevice: 2 ** 21,
  sticky: 2 ** 20,
} as const;

/** Tar type flags as Go's archive/tar names them (the ASCII byte of the header's typeflag). */
export const TypeFlag = { reg: 48, link: 49, symlink: 50, char: 51, block: 52, dir: 53, fifo: 54, cont: 55 } as const;

/** Go's `tar.Header.FileInfo().Mode()`: permission bits, setuid/setgid/sticky, then the type from mode and typeflag. */
export function goTarFileMode(mode: number, typeflag: number): number {
  let out = mode & 0o777;
  if (mode & 0o4000) out += MODE.setuid;
  if (mode & 0o2000) out += MODE.setgid;
  if (mode & 0o1000) out += MODE.sticky;
  const bits = new Set<number>();
  const kind = Math.floor(mode / 0o10000) * 0o10000;
  if (kind === 0o40000) bits.add(MODE.dir);
  else if (kind === 0o10000) bits.add(MODE.namedPipe);
  else if (kind === 0o120000) bits.add(MODE.symlink);
  else if (kind === 0o60000) bits.add(MODE.device);
  else if (kind === 0o20000) bits.add(MODE.device).add(MODE.charDevice);
  else if (kind === 0o140000) bits.add(MODE.socket);
  if (typeflag === TypeFlag.symlink) bits.add(MODE.symlink);
  else if (typeflag === TypeFlag.char) bits.add(MODE.device).add(MODE.charDevice);
  else if (typeflag === TypeFlag.block) bits.add(MODE.device);
  else if (typeflag === TypeFlag.dir) bits.add(MODE.dir);
  else if (typeflag === TypeFlag.fifo) bits.add(MODE.namedPipe);
  for (const bit of bits) out += bit;
  return out;
}

/** True when Go's FileMode says directory: dive's `IsDir` (typeflag `5` or a mode with S_IFDIR). */
export function goModeIsDir(fileMode: number): boolean {
  return fileMode >= MODE.dir;
}
