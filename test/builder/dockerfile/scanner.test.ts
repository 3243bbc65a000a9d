import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { positionOf } from '../../../builder/dockerfile/ast.js';
import { parseAst } from '../../../builder/dockerfile/scanner.js';
import { thrown } from '../../support/errors.js';

const lines = (...l: string[]): string => l.join('\n');
const parse = (text: string) => parseAst(text, { file: 'Dockerfile' });

describe('parseAst', () => {
  it('records the first and last line of each instruction', async () => {
    const text = await readFile(new URL('./fixtures/line-numbers.Dockerfile', import.meta.url), 'utf8');
    const ast = parse(text);
    expect(ast.nodes.map((n) => [n.location.line, n.location.endLine])).toEqual([
      [5, 5],
      [11, 12],
      [17, 31],
    ]);
    expect(ast.directives.escape).toBe('\\');
    expect(ast.nodes[2]?.comments).toEqual(['build and clean up in one layer']);
  });

  it('gives the column of an indented instruction and of text on continuation lines', () => {
    const ast = parse(lines('FROM x', '   RUN echo a \\', '  --weird b'));
    const run = ast.nodes[1];
    expect(run?.location).toEqual({ file: 'Dockerfile', line: 2, column: 4, endLine: 3 });
    expect(run && positionOf(run, '--weird')).toEqual({ file: 'Dockerfile', line: 3, column: 3 });
  });

  it('keeps the original text with continuations joined', () => {
    const ast = parse(lines('FROM x', 'RUN a \\', '  # skipped', '    b'));
    expect(ast.nodes[1]?.original).toBe('RUN a     b');
  });

  it('is case-insensitive about instruction names but keeps how they were written', () => {
    const ast = parse(lines('from x', 'Run y'));
    expect(ast.nodes.map((n) => n.command)).toEqual(['from', 'Run']);
    expect(ast.nodes[1]?.args).toEqual(['y']);
  });

  it('handles CRLF line endings and a byte-order mark', () => {
    const ast = parse('\uFEFF# escape=`\r\nFROM x\r\nRUN a `\r\n b\r\n');
    expect(ast.directives.escape).toBe('`');
    expect(ast.nodes.map((n) => n.args)).toEqual([['x'], ['a  b']]);
  });

  it('warns about empty continuation lines, not about comment lines', () => {
    const ast = parse(
      lines(
        '',
        'FROM alpine:3.19',
        '',
        'RUN valid \\',
        '    continuation',
        '',
        'RUN something \\',
        '',
        '    following \\',
        '',
        '    more',
        '',
        'RUN another \\',
        '',
        '    thing',
        '',
        'RUN non-indented \\',
        '# this is a comment',
        '   after-comment',
        '',
        'RUN indented \\',
        '    # this is an indented comment',
        '    comment',
      ),
    );
    expect(ast.warnings).toHaveLength(2);
    expect(ast.warnings[0]?.message).toContain('RUN something     following     more');
    expect(ast.warnings[1]?.message).toContain('RUN another     thing');
    expect(ast.nodes.map((n) => n.args[0])).toContain('non-indented    after-comment');
  });

  it('refuses a file without instructions', () => {
    expect(thrown(() => parse('')).message).toMatch(/^Dockerfile:1:1: file with no instructions/);
    const err = thrown(() => parse(lines('# Hello', '# These are just comments', '')));
    expect(err.code).toBe('DOCKERFILE_INVALID');
    expect(err.message).toContain('file with no instructions');
  });

  it('refuses a JSON array holding something other than strings', () => {
    const err = thrown(() => parse('FROM x\nCMD [ "echo", [ "nested json" ] ]'));
    expect(err.message).toBe('Dockerfile:2:5: when using JSON array syntax, arrays must be comprised of strings only');
    for (const bad of ['["a",42,"b"]', '["a",1.5,"b"]', '["a",{},"b"]', '["a",["c"],"b"]', '["a",true,"b"]', '["a",null,"b"]']) {
      expect(thrown(() => parse(`RUN ${bad}`)).code).toBe('DOCKERFILE_INVALID');
    }
  });

  it('refuses ENV without a value', () => {
    const err = thrown(() => parse(lines('FROM busybox', '', 'ENV PATH')));
    expect(err.message).toMatch(/^Dockerfile:3:5: ENV must have two arguments/);
  });

  it('refuses key=value lists with a word lacking =', () => {
    const err = thrown(() => parse('LABEL a=b c'));
    expect(err.message).toContain(`can't find = in "c"`);
  });

  it('reads nested ONBUILD trigger positions', () => {
    const ast = parse('FROM x\nONBUILD   COPY --chwon=1 a b');
    const child = ast.nodes[1]?.child;
    expect(child?.location.column).toBe(11);
    expect(child && positionOf(child, '--chwon')).toEqual({ file: 'Dockerfile', line: 2, column: 16 });
  });
});

describe('parser directives', () => {
  it('reads syntax, escape and check, case-insensitive, keeping the first word', () => {
    const ast = parse(lines('# SYNTAX = docker/dockerfile:1.7 // opts', '#Escape=`', '# check = skip=all // why', 'FROM x'));
    expect(ast.directives).toEqual({ syntax: 'docker/dockerfile:1.7', escape: '`', check: 'skip=all' });
    expect(ast.directiveEntries.map((d) => [d.name, d.value, d.line])).toEqual([
      ['syntax', 'docker/dockerfile:1.7 // opts', 1],
      ['escape', '`', 2],
      ['check', 'skip=all // why', 3],
    ]);
  });

  it('stops at the first line that is not a directive', () => {
    for (const text of [
      lines('# key = FOO bar', '# escape=`', 'FROM x'),
      lines('', '# escape=`', 'FROM x'),
      lines('FROM x', '# escape=`', 'RUN y'),
      lines('# escape', '# escape=`', 'FROM x'),
    ]) {
      expect(parse(text).directives.escape).toBe('\\');
    }
  });

  it('accepts leading whitespace before a directive', () => {
    expect(parse(lines('   # escape=`', 'FROM x')).directives.escape).toBe('`');
  });

  it('refuses a repeated directive and an invalid escape', () => {
    expect(thrown(() => parse(lines('# escape=`', '# ESCAPE=\\', 'FROM x'))).message).toMatch(
      /^Dockerfile:2:1: only one escape parser directive can be used/,
    );
    expect(thrown(() => parse(lines('# syntax=a', '# syntax=b', 'FROM x'))).message).toContain('only one syntax');
    expect(thrown(() => parse(lines('# escape=$', 'FROM x'))).message).toBe(
      "Dockerfile:1:1: invalid escape token '$' does not match ` or \\",
    );
  });

  it('finds syntax below a shebang, but not escape', () => {
    const ast = parse(lines('#!/usr/bin/env dockerfile', '# syntax = docker/dockerfile:1', '# escape=`', 'FROM x'));
    expect(ast.directives).toEqual({ syntax: 'docker/dockerfile:1', escape: '\\' });
    expect(parse(lines('#!/bin/sh', '', '# syntax = x', 'FROM x')).directives.syntax).toBeUndefined();
  });

  it('does not take directive comments as instruction comments', () => {
    const ast = parse(lines('# syntax=x', '# about FROM', 'FROM x'));
    expect(ast.nodes[0]?.comments).toEqual(['about FROM']);
  });
});
