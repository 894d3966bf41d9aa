/**
 * docs/cli.md's transcripts (```console blocks: `$ distlock …` lines, each followed by its output)
 * match what the command prints. They run on a files backend where `deploy` is held (by
 * `distlock run deploy`, holding it without a command). What differs from one run to the next —
 * token prefixes, fences, times left — is masked on both sides before comparing.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, waitUntil } from '../harness/process.js';
import { cli, startCli, type CliProcess } from './cli-process.js';

const DOC = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');

interface Transcript {
  readonly line: number;
  readonly args: string[];
  readonly output: string;
}

function transcripts(markdown: string): Transcript[] {
  const found: Transcript[] = [];
  const lines = markdown.split('\n');
  let inConsole = false;
  let current: { line: number; args: string[]; output: string[] } | undefined;
  const flush = () => {
    if (current) found.push({ ...current, output: current.output.join('\n') });
    current = undefined;
  };
  lines.forEach((line, i) => {
    if (/^```console\s*$/.test(line)) inConsole = true;
    else if (inConsole && /^```\s*$/.test(line)) {
      flush();
      inConsole = false;
    } else if (inConsole && line.startsWith('$ ')) {
      flush();
      current = { line: i + 1, args: line.slice(2).trim().split(/\s+/), output: [] };
    } else if (current) current.output.push(line);
  });
  return found;
}

/** Mask what changes between runs: token prefixes, fences, times left. */
function mask(text: string): string {
  return text
    .replace(/"tokenPrefix": "[^"]*"/g, '"tokenPrefix": "<token>"')
    .replace(/"fence": "\d+"/g, '"fence": "<fence>"')
    .replace(/"remainingMs": (\d+|null)/g, '"remainingMs": <ms>')
    .split('\n')
    .map((line) => {
      const cells = line.trim().split(/\s{2,}/);
      const isRow = cells.length === 5 && cells[2]!.endsWith('…');
      return isRow ? `${cells[0]}  ${cells[1]}  <token>…  <fence>  <time>` : line.trimEnd();
    })
    .join('\n')
    .trim();
}

const TRANSCRIPTS = transcripts(DOC);

describe('docs/cli.md examples', { timeout: 60_000 }, () => {
  const dir = tempDir('distlock-cli-docs-');
  const env = { DISTLOCK_URL: `file://${dir.path}` };
  let holder: CliProcess | undefined;
  let holderOutput = '';
  /** Two of the three permits of `exports`, held by `distlock run exports --limit 3`. */
  const permits: CliProcess[] = [];

  beforeAll(async () => {
    holder = startCli(['run', '--ttl', '30s', 'deploy'], env);
    holder.child.stdout?.on('data', (chunk: Buffer) => (holderOutput += chunk.toString()));
    for (let i = 0; i < 2; i += 1) {
      const permit = startCli(['run', '--ttl', '30s', '--limit', '3', 'exports'], env);
      let said = '';
      permit.child.stdout?.on('data', (chunk: Buffer) => (said += chunk.toString()));
      permits.push(permit);
      await waitUntil('distlock run exports --limit 3 to hold a permit', () => said !== '', 20_000);
    }
    await waitUntil('distlock run deploy to hold the lock', () => holderOutput !== '', 20_000);
  });
  afterAll(async () => {
    for (const process of [holder, ...permits]) process?.child.kill('SIGTERM');
    await Promise.all([holder?.done, ...permits.map((permit) => permit.done)]);
    dir.remove();
  });

  it('has transcripts, of distlock commands, with JSON among them', () => {
    expect(TRANSCRIPTS.length).toBeGreaterThanOrEqual(4);
    for (const { line, args } of TRANSCRIPTS) {
      expect(args[0], `docs/cli.md:${line}`).toBe('distlock');
      expect(args.join(' '), `docs/cli.md:${line}: no quoting, please`).not.toMatch(/['"\\]/);
    }
    expect(TRANSCRIPTS.some(({ args }) => args.includes('--json'))).toBe(true);
  });

  it.each(TRANSCRIPTS.map((transcript) => [transcript.line, transcript] as const))(
    'docs/cli.md:%d prints what the command prints',
    async (_line, { args, output }) => {
      const result = await cli(args.slice(1), env);
      expect(result.stderr).toBe('');
      expect(mask(result.stdout)).toBe(mask(output));
    },
  );

  it('holds the lock without a command until SIGTERM, then releases it and exits 0', async () => {
    expect(holderOutput).toMatch(
      /^holding "deploy" \(fence \d+\); SIGINT \(Ctrl-C\), SIGTERM or SIGHUP releases it\n$/,
    );
    holder!.child.kill('SIGTERM');
    const ended = await holder!.done;
    holder = undefined;
    expect(ended.code, ended.stderr).toBe(0);
    const after = await cli(['status', 'deploy', '--json'], env);
    expect(JSON.parse(after.stdout)).toEqual({ key: 'deploy', held: false });
  });
});
