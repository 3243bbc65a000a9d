import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// Enforces the import rules of ../shared/DESIGN.md ("Import rules").
const ROOT = resolve(import.meta.dirname, '..');
const PARTS = ['oci', 'builder', 'registry', 'signer', 'analyzer', 'cli'] as const;
type Part = (typeof PARTS)[number];

/** npm packages each part may import statically (besides node:* and its allowed folders). */
const APPROVED: Record<Part, readonly string[]> = {
  oci: ['tar-stream', 'fzstd'],
  builder: ['tar-stream', '@balena/dockerignore'],
  registry: ['express', 'sqlite3', 'bcryptjs', 'jose', 'yaml', 'zod', 'pino'],
  signer: ['@sigstore/sign', '@sigstore/verify', '@sigstore/bundle', '@sigstore/core', 'tweetnacl', 'node-forge'],
  analyzer: ['tar-stream'],
  cli: ['commander', 'yaml'],
};
/** Heavy optional backends: dynamic import() only (rule 5). */
const DYNAMIC_ONLY = ['pg', '@aws-sdk/client-s3'];

interface ImportSite {
  file: string;
  specifier: string;
  dynamic: boolean;
}

function listTs(dir: string): string[] {
  let out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(listTs(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

function importsOf(file: string, source: string): ImportSite[] {
  const sites: ImportSite[] = [];
  const staticRe = /^\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm;
  const dynamicRe = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const m of source.matchAll(staticRe)) sites.push({ file, specifier: (m[1] ?? m[2]) as string, dynamic: false });
  for (const m of source.matchAll(dynamicRe)) sites.push({ file, specifier: m[1] as string, dynamic: true });
  return sites;
}

function partOf(relPath: string): Part | undefined {
  return PARTS.find((p) => relPath === p || relPath.startsWith(`${p}/`));
}

function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] as string);
}

/** Returns the rule violations of one file's imports; empty when it follows DESIGN.md. */
export function violations(relFile: string, source: string): string[] {
  const from = partOf(relFile);
  if (!from) return [];
  const out: string[] = [];
  for (const site of importsOf(relFile, source)) {
    const spec = site.specifier;
    if (spec.startsWith('node:')) continue;
    if (spec.startsWith('.')) {
      const target = relative(ROOT, resolve(ROOT, dirname(relFile), spec));
      const to = partOf(target);
      if (!to) out.push(`${relFile} imports ${spec}, outside the library folders`);
      else if (to === 'cli' && from !== 'cli') out.push(`${relFile} imports cli/ (rule 4: nothing imports cli)`);
      else if (from === 'oci' && to !== 'oci') out.push(`${relFile} imports ${to}/ (rule 1: oci imports only oci)`);
      else if (from !== 'cli' && to !== 'oci' && to !== from) out.push(`${relFile} imports ${to}/ (rule 2: parts never import each other)`);
      if (from === 'registry' && target.startsWith('oci/client')) out.push(`${relFile} imports ${spec} (rule 3: the server never imports the client)`);
      continue;
    }
    const pkg = packageName(spec);
    if (DYNAMIC_ONLY.includes(pkg)) {
      if (!site.dynamic) out.push(`${relFile} imports ${pkg} statically (rule 5: heavy backends load by dynamic import)`);
      continue;
    }
    const approved = from === 'cli' ? Object.values(APPROVED).flat() : APPROVED[from];
    if (!approved.includes(pkg)) out.push(`${relFile} imports package ${pkg}, not approved for ${from}/`);
  }
  if (from !== 'cli') {
    if (/\bprocess\.(stdout|stderr)\b|\bconsole\.(log|error|warn|info)\(/.test(source)) out.push(`${relFile} prints (rule 4: only cli/ writes to stdout/stderr)`);
  }
  if (relFile !== 'cli/main.ts' && /\bprocess\.exit\(/.test(source)) out.push(`${relFile} calls process.exit (rule 4: only cli/main.ts)`);
  return out;
}

describe('architecture (DESIGN.md import rules)', () => {
  it('every source file follows the import rules', () => {
    const files = PARTS.flatMap((p) => listTs(join(ROOT, p)));
    expect(files.length).toBeGreaterThan(10);
    const found = files.flatMap((f) => violations(relative(ROOT, f), readFileSync(f, 'utf8')));
    expect(found).toEqual([]);
  });

  it('the checker catches each kind of violation', () => {
    expect(violations('oci/x.ts', "import { a } from '../registry/app.js';")).toHaveLength(1);
    expect(violations('signer/x.ts', "import { a } from '../builder/plan.js';")).toHaveLength(1);
    expect(violations('registry/x.ts', "import { c } from '../oci/client/index.js';")).toHaveLength(1);
    expect(violations('analyzer/x.ts', "import { m } from '../cli/main.js';")).toHaveLength(1);
    expect(violations('oci/x.ts', "import express from 'express';")).toHaveLength(1);
    expect(violations('registry/db/pg.ts', "import pg from 'pg';")).toHaveLength(1);
    expect(violations('registry/db/pg.ts', "const pg = await import('pg');")).toEqual([]);
    expect(violations('builder/x.ts', 'console.log(1);')).toHaveLength(1);
    expect(violations('cli/commands/x.ts', 'process.exit(1);')).toHaveLength(1);
    expect(violations('cli/commands/x.ts', "import { a } from '../../registry/app.js'; process.stdout.write('x');")).toEqual([]);
    expect(violations('registry/x.ts', "import { a } from '../oci/digest.js';")).toEqual([]);
  });
});
