/**
 * End-to-end tests of the `distlock` command: every test spawns the real CLI
 * (`node --import tsx src/cli/main.ts`), on the files backend and on real Redis and etcd servers.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/cli/exit-codes.js';
import { etcdBackend } from '../../src/backends/etcd/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { tempDir, waitUntil } from '../harness/process.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { cli, cliAll, isAlive, readLines, startCli, type CliResult } from './cli-process.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

/** Shell snippet: a command that records its pid, then ignores SIGTERM and runs until killed. */
const STUBBORN = `trap '' TERM; echo $$ > "$PIDFILE"; while :; do sleep 0.05; done`;

/** Generous: each test starts several Node.js processes, slow on a busy two-core machine. */
const SLOW = { timeout: 90_000 };

/** Every line of output, to check that an error is exactly one line. */
function stderrLines(result: CliResult): string[] {
  return result.stderr.split('\n').filter((line) => line !== '');
}

interface BackendUnderTest {
  readonly name: string;
  start(): Promise<{ url: string; stop: () => Promise<void> }>;
}

const BACKENDS: readonly BackendUnderTest[] = [
  {
    name: 'files',
    start: async () => {
      const dir = tempDir('distlock-cli-');
      return { url: `file://${dir.path}`, stop: async () => dir.remove() };
    },
  },
  {
    name: 'redis',
    start: async () => {
      const redis = await startRedis();
      return { url: redis.url, stop: () => redis.stop() };
    },
  },
  {
    name: 'etcd',
    start: async () => {
      const etcd = await startEtcd(1);
      return { url: etcd.url, stop: () => etcd.stop() };
    },
  },
];

// The three backends' suites run side by side (their tests one after another within each suite).
describe.concurrent.each(BACKENDS)('distlock on $name', SLOW, (backendUnderTest) => {
  let url = '';
  let stop: () => Promise<void> = async () => undefined;
  const work = tempDir('distlock-cli-work-');
  let keyCounter = 0;
  const freshKey = () => `cli-${backendUnderTest.name}-${process.pid}-${++keyCounter}`;
  const env = () => ({ DISTLOCK_URL: url });

  beforeAll(async () => {
    ({ url, stop } = await backendUnderTest.start());
  });
  afterAll(async () => {
    await stop();
    work.remove();
  });

  /** Start `run KEY -- sh -c SCRIPT` and wait until the script has written its pid. */
  async function holdWith(
    key: string,
    script: string,
    options: { args?: string[]; extraEnv?: Record<string, string> } = {},
  ) {
    const pidFile = join(work.path, `${key}.pid`);
    const run = startCli(['run', ...(options.args ?? []), key, '--', 'sh', '-c', script], {
      ...env(),
      PIDFILE: pidFile,
      ...options.extraEnv,
    });
    let exited = false;
    void run.done.then(() => (exited = true));
    await waitUntil(
      `the command under "${key}" to start`,
      () => {
        if (exited) throw new Error('distlock run exited before its command started');
        return readLines(pidFile).length > 0;
      },
      20_000,
    );
    return { ...run, pid: Number(readLines(pidFile)[0]) };
  }

  it.sequential(
    'never lets two runs on one key overlap, and fences grow with each run',
    async () => {
      const key = freshKey();
      const log = join(work.path, `${key}.log`);
      const script =
        'echo "S $(date +%s%N) $DISTLOCK_FENCE" >> "$LOG"; sleep 0.2; echo "E $(date +%s%N) $DISTLOCK_FENCE" >> "$LOG"';
      const results = await Promise.all(
        Array.from({ length: 4 }, () =>
          cli(['run', '--wait', '40s', key, '--', 'sh', '-c', script], { ...env(), LOG: log }),
        ),
      );
      for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });

      const intervals = new Map<string, { start?: bigint; end?: bigint }>();
      for (const line of readLines(log)) {
        const [kind, at, fence] = line.split(' ');
        const entry = intervals.get(fence ?? '') ?? {};
        if (kind === 'S') entry.start = BigInt(at ?? '0');
        else entry.end = BigInt(at ?? '0');
        intervals.set(fence ?? '', entry);
      }
      expect(intervals.size).toBe(4); // four distinct fences
      const ordered = [...intervals.entries()]
        .map(([fence, { start, end }]) => ({ fence: BigInt(fence), start: start!, end: end! }))
        .sort((a, b) => (a.start < b.start ? -1 : 1));
      for (let i = 1; i < ordered.length; i++) {
        const previous = ordered[i - 1]!;
        const current = ordered[i]!;
        expect(current.start >= previous.end, `run ${i} started before run ${i - 1} ended`).toBe(
          true,
        );
        expect(current.fence > previous.fence).toBe(true);
      }
    },
  );

  it.sequential(
    'exits 75 at once with --no-wait while the key is held, and shows the holder',
    async () => {
      const key = freshKey();
      const holder = await holdWith(key, STUBBORN.replace("trap '' TERM; ", ''), {
        args: ['--ttl', '20s'],
      });
      try {
        const [noWait, status, list] = await Promise.all([
          cli(['run', '--no-wait', key, '--', 'true'], env()),
          cli(['status', key, '--json'], env()),
          cli(['list', key.slice(0, -2), '--json'], env()),
        ]);
        expect(noWait.code).toBe(ExitCode.NOT_ACQUIRED);
        expect(noWait.stdout).toBe('');
        expect(stderrLines(noWait)).toHaveLength(1);
        expect(noWait.stderr).toMatch(
          /is held by token .{8}… \(fence \d+, .* left\); not waiting \(--no-wait\)/,
        );
        // No waiting: it takes about as long as a `status` started at the same moment (both pay a
        // Node.js start-up, slow on a busy machine), far less than the default 10 s wait.
        expect(noWait.durationMs - status.durationMs).toBeLessThan(5_000);

        expect(status.code, status.stderr).toBe(ExitCode.OK);
        const shown = JSON.parse(status.stdout) as Record<string, unknown>;
        expect(shown).toEqual({
          key,
          held: true,
          mode: 'exclusive',
          tokenPrefix: expect.stringMatching(/^.{8}$/),
          fence: expect.stringMatching(/^\d+$/),
          // null where the store cannot tell (etcd: the holder's session keeps the key alive)
          remainingMs: shown.remainingMs === null ? null : expect.any(Number),
          ...(shown.waiters === undefined ? {} : { waiters: expect.any(Number) }),
        });
        if (shown.remainingMs !== null) {
          expect(shown.remainingMs as number).toBeGreaterThan(0);
          expect(shown.remainingMs as number).toBeLessThanOrEqual(20_000);
        }

        expect(list.code, list.stderr).toBe(ExitCode.OK);
        const listed = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
        expect(listed.find((lock) => lock.key === key)).toEqual({
          ...shown,
          remainingMs: shown.remainingMs === null ? null : expect.any(Number),
        });
      } finally {
        holder.child.kill('SIGTERM');
      }
      const ended = await holder.done;
      expect(ended.code).toBe(128 + 15); // the forwarded SIGTERM killed the command
      const free = await cli(['status', key, '--json'], env());
      expect(free.code).toBe(ExitCode.NOT_HELD);
      expect(JSON.parse(free.stdout)).toEqual({ key, held: false });
    },
  );

  it.sequential(
    'kills a command that outlives its broken lock within the grace period',
    async () => {
      const key = freshKey();
      const ttlMs = 6_000;
      const graceMs = 1_000;
      const holder = await holdWith(key, STUBBORN, {
        args: ['--ttl', `${ttlMs}ms`, '--grace', `${graceMs}ms`],
      });
      const broken = await cli(['release', key, '--force', '--yes'], env());
      expect(broken.code, broken.stderr).toBe(ExitCode.OK);
      expect(broken.stdout).toContain('released');

      const ended = await holder.done;
      expect(ended.code, ended.stderr).toBe(ExitCode.LOCK_LOST);
      expect(stderrLines(ended)).toHaveLength(1);
      expect(ended.stderr).toMatch(/was lost/);
      expect(isAlive(holder.pid)).toBe(false);
      // Loss is noticed at the next renewal (ttl/3) at the latest, or at once where the store
      // announces changes; SIGKILL follows SIGTERM after the grace period.
      expect(ended.exitedAt - broken.exitedAt).toBeLessThan(ttlMs / 3 + graceMs + 1_500);
    },
  );

  it.sequential(
    'forwards SIGINT and SIGTERM to the command, passes its exit code through, and releases',
    async () => {
      const keyInt = freshKey();
      const keyTerm = freshKey();
      const trapping = (signal: string, code: number) =>
        `trap 'echo got ${signal} >> "$PIDFILE.log"; exit ${code}' ${signal}; echo $$ > "$PIDFILE"; while :; do sleep 0.05; done`;
      const [onInt, onTerm] = await Promise.all([
        holdWith(keyInt, trapping('INT', 41)),
        holdWith(keyTerm, trapping('TERM', 42)),
      ]);
      onInt.child.kill('SIGINT');
      onTerm.child.kill('SIGTERM');
      const [endedInt, endedTerm] = await Promise.all([onInt.done, onTerm.done]);
      expect(endedInt.code, endedInt.stderr).toBe(41);
      expect(endedTerm.code, endedTerm.stderr).toBe(42);
      expect(readLines(join(work.path, `${keyInt}.pid.log`))).toEqual(['got INT']);
      expect(readLines(join(work.path, `${keyTerm}.pid.log`))).toEqual(['got TERM']);
      const listed = await cli(['list', `cli-${backendUnderTest.name}-`, '--json'], env());
      const keys = (JSON.parse(listed.stdout) as Array<{ key: string }>).map((lock) => lock.key);
      expect(keys).not.toContain(keyInt);
      expect(keys).not.toContain(keyTerm);
    },
  );
});

describe('distlock (backend-independent behaviour, on files)', SLOW, () => {
  const dir = tempDir('distlock-cli-misc-');
  const env = { DISTLOCK_URL: `file://${dir.path}` };
  afterAll(() => dir.remove());

  it('passes exit codes through: own code, 128+signal, 127 for a missing command', async () => {
    const [seven, killed, missing, ok] = await Promise.all([
      cli(['run', 'codes-1', '--', 'sh', '-c', 'exit 7'], env),
      cli(['run', 'codes-2', '--', 'sh', '-c', 'kill -9 $$'], env),
      cli(['run', 'codes-3', '--', 'no-such-command-distlock-test'], env),
      cli(
        ['run', 'codes-4', '--', 'sh', '-c', 'printf "%s %s" "$DISTLOCK_KEY" "$DISTLOCK_FENCE"'],
        env,
      ),
    ]);
    expect(seven.code).toBe(7);
    expect(killed.code).toBe(128 + 9);
    expect(missing.code).toBe(ExitCode.COMMAND_NOT_FOUND);
    expect(stderrLines(missing)).toEqual([
      'distlock: command not found: no-such-command-distlock-test',
    ]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^codes-4 \d+$/);
    expect(ok.stderr).toBe('');
  });

  it('answers bad usage, URLs and durations with a one-line error and exit 64', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['run', 'k', '--ttl', '5x', '--', 'true'], /--ttl: "5x" is not a duration/],
      [['run', 'k', '--wait', '-1s', '--', 'true'], /--wait: "-1s" is not a duration/],
      [['run', 'k', '--ttl', '50ms', '--', 'true'], /--ttl: must be at least 100ms/],
      [
        ['run', 'k', '--ttl', '3s', '--grace', '2s', '--', 'true'],
        /--grace: .* more than a quarter/,
      ],
      [['run', 'k', '--limit', '0', '--', 'true'], /--limit: must be at least 1/],
      [['run', 'k', '--shared', '--limit', '2', '--', 'true'], /--shared and --limit: choose one/],
      [['run', 'k', '--backend', 'gopher://h:1', '--', 'true'], /unknown backend "gopher:"/],
      [['run', 'k', '--bogus', '--', 'true'], /unknown option '--bogus'/],
      [['release', 'k'], /add --force/],
      [['release', 'k', '--force'], /without a terminal.*--yes/],
      [['frobnicate'], /unknown command 'frobnicate'/],
    ];
    const results = await cliAll(cases.map(([args]) => ({ args, env })));
    results.forEach((result, i) => {
      const [args, message] = cases[i]!;
      const lines = stderrLines(result);
      expect(result.code, `${JSON.stringify(args)}: ${result.stderr}`).toBe(ExitCode.USAGE);
      expect(result.stdout).toBe('');
      expect(lines, JSON.stringify(args)).toHaveLength(1);
      expect(lines[0]).toMatch(/^distlock: /);
      expect(lines[0]).toMatch(message);
    });
  });

  it('never prints a password from a URL, whatever fails', async () => {
    const secret = 's3cr3tPassw0rd';
    const invocations: Array<{ args: string[]; env?: Record<string, string> }> = [
      { args: ['status', 'k', '--backend', `redis://user:${secret}@127.0.0.1:1`] },
      { args: ['list', '--json'], env: { DISTLOCK_URL: `redis://:${secret}@127.0.0.1:1/0` } },
      {
        args: ['run', '-v', '--wait', '1s', 'k', '--', 'true'],
        env: { DISTLOCK_URL: `rediss://default:${secret}@127.0.0.1:1` },
      },
      {
        args: ['run', '--no-wait', 'k', '--', 'true'],
        env: { DISTLOCK_URL: `etcd://root:${secret}@127.0.0.1:1` },
      },
      { args: ['status', 'k', '--backend', `postgres://app:${secret}@127.0.0.1:1/db`] },
      {
        args: [
          'status',
          'k',
          '--backend',
          `DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=${secret};BlobEndpoint=http://127.0.0.1:1/dev;`,
        ],
      },
      {
        args: ['status', 'k', '--backend', 'azblob://locks'],
        env: {
          AZURE_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=${secret};BlobEndpoint=http://127.0.0.1:1/dev;`,
        },
      },
      {
        args: [
          'list',
          '--backend',
          `http://127.0.0.1:1/dev/locks?sv=2023-11-03&sp=rwl&sig=${secret}`,
        ],
      },
      { args: ['status', 'k', '--backend', `redis://user:${secret}@host:notaport`] },
      {
        args: ['run', '--no-wait', 'k', '--', 'true'],
        env: { DISTLOCK_URL: `redis+cluster://u:${secret}@127.0.0.1:1,127.0.0.1:2` },
      },
      {
        args: ['status', 'k', '--backend', `redis+sentinel://:${secret}@127.0.0.1:1/mymaster`],
      },
      { args: [`redis://user:${secret}@127.0.0.1:1`] },
    ];
    const results = await cliAll(
      invocations.map(({ args, env: extra }) => ({ args, env: { ...env, ...extra } })),
    );
    results.forEach((result, i) => {
      const output = result.stdout + result.stderr;
      expect(output, JSON.stringify(invocations[i])).not.toContain(secret);
      expect(
        [ExitCode.USAGE, ExitCode.UNAVAILABLE],
        `${JSON.stringify(invocations[i])}: ${output}`,
      ).toContain(result.code);
      expect(stderrLines(result), output).toHaveLength(1);
    });
  });

  it('prints help, the version and the exit codes, and runs the demo', async () => {
    const [help, runHelp, version, demo] = await Promise.all([
      cli(['--help']),
      cli(['run', '--help']),
      cli(['--version']),
      cli(['demo', '--workers', '2', '--payments', '4', '--json']),
    ]);
    expect(demo.code, demo.stderr).toBe(0);
    expect(JSON.parse(demo.stdout)).toMatchObject({ ok: true, workers: 2, payments: 4 });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes:/);
    expect(help.stdout).toMatch(/DISTLOCK_URL/);
    expect(runHelp.stdout).toMatch(/DISTLOCK_DEADLINE/);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(existsSync(join(dir.path))).toBe(true);
  });
});

describe('distlock run on redis behind a partition', SLOW, () => {
  let redis: RedisServer;
  let proxy: TcpProxy;
  const work = tempDir('distlock-cli-partition-');

  beforeAll(async () => {
    redis = await startRedis();
    proxy = await startTcpProxy(redis.port);
  });
  afterAll(async () => {
    await proxy.close();
    await redis.stop();
    work.remove();
  });

  it('kills the command before the store lets anyone else take the lock', async () => {
    const key = `partition-${process.pid}`;
    const beats = join(work.path, 'beats');
    const pidFile = join(work.path, 'pid');
    const ttlMs = 4_000;
    // Ignores SIGTERM (logging it) and writes a timestamp every ~20 ms until SIGKILL.
    const script = `trap 'echo TERM >> "$BEATS"' TERM; echo $$ > "$PIDFILE"; while :; do date +%s%3N >> "$BEATS"; sleep 0.02; done`;
    const run = startCli(
      ['run', '--ttl', `${ttlMs}ms`, '--grace', '500ms', key, '--', 'sh', '-c', script],
      { DISTLOCK_URL: `redis://127.0.0.1:${proxy.port}`, BEATS: beats, PIDFILE: pidFile },
    );
    await waitUntil('the command to start', () => readLines(pidFile).length > 0, 20_000);
    const pid = Number(readLines(pidFile)[0]);

    proxy.freeze(); // from now on no renewal reaches Redis
    await new Promise((resolve) => setTimeout(resolve, 200)); // let a request in flight land
    // When Redis will let the next holder in: the lock key's absolute expiry (Redis >= 7).
    const storeExpiry = Number(await redis.cli(['pexpiretime', `distlock:{${key}}`]));
    expect(storeExpiry).toBeGreaterThan(Date.now());

    await waitUntil('the command to be killed', () => !isAlive(pid), ttlMs + 5_000, 10);
    const lines = readLines(beats);
    const times = lines.filter((line) => line !== 'TERM').map(Number);
    const lastBeat = Math.max(...times);
    expect(lines).toContain('TERM'); // SIGTERM first, SIGKILL after the grace period
    expect(lastBeat, `${storeExpiry - lastBeat} ms to spare`).toBeLessThan(storeExpiry);
    expect(Date.now()).toBeLessThan(storeExpiry + 5_000);

    proxy.heal(); // let distlock's final release fail fast or succeed, and exit
    const ended = await run.done;
    expect(ended.code, ended.stderr).toBe(ExitCode.LOCK_LOST);
    expect(ended.stderr).toMatch(/was lost \(not renewed in time\)/);
  });
});

describe('distlock run on etcd behind a partition', SLOW, () => {
  let etcd: EtcdServer;
  let proxy: TcpProxy;
  const work = tempDir('distlock-cli-etcd-partition-');

  beforeAll(async () => {
    etcd = await startEtcd(1);
    proxy = await startTcpProxy(Number(etcd.endpoints[0]!.split(':')[1]));
  });
  afterAll(async () => {
    await proxy.close();
    await etcd.stop();
    work.remove();
  });

  it('kills the command before etcd frees the lock (its session lease expires)', async () => {
    const key = `partition-${process.pid}`;
    const beats = join(work.path, 'beats');
    const pidFile = join(work.path, 'pid');
    const ttlMs = 4_000;
    const script = `trap 'echo TERM >> "$BEATS"' TERM; echo $$ > "$PIDFILE"; while :; do date +%s%3N >> "$BEATS"; sleep 0.02; done`;
    const run = startCli(
      ['run', '--ttl', `${ttlMs}ms`, '--grace', '500ms', key, '--', 'sh', '-c', script],
      { DISTLOCK_URL: `etcd://127.0.0.1:${proxy.port}`, BEATS: beats, PIDFILE: pidFile },
    );
    const observer = etcdBackend({ url: etcd.url });
    try {
      await waitUntil('the command to start', () => readLines(pidFile).length > 0, 20_000);
      const pid = Number(readLines(pidFile)[0]);
      expect(await observer.inspect(key)).not.toBeNull();

      proxy.freeze(); // keep-alives and renewals stop reaching etcd
      // Watch from outside: the last moment etcd still showed the lock held is a lower bound of
      // when anyone else could take it.
      const frozenAt = Date.now();
      let lastSeenHeldAt = frozenAt;
      for (;;) {
        const sentAt = Date.now();
        if ((await observer.inspect(key)) === null) break;
        lastSeenHeldAt = sentAt;
        expect(sentAt - frozenAt, 'etcd never freed the lock').toBeLessThan(ttlMs + 10_000);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(isAlive(pid)).toBe(false);
      const lines = readLines(beats);
      const lastBeat = Math.max(...lines.filter((line) => line !== 'TERM').map(Number));
      expect(lines).toContain('TERM');
      expect(lastBeat, `${lastSeenHeldAt - lastBeat} ms to spare`).toBeLessThan(lastSeenHeldAt);
    } finally {
      proxy.heal();
      await observer.close();
    }
    const ended = await run.done;
    expect(ended.code, ended.stderr).toBe(ExitCode.LOCK_LOST);
    expect(ended.stderr).toMatch(/was lost \((not renewed in time|unreachable)\)/);
  });
});

describe('distlock on a Redis that requires a password', SLOW, () => {
  let redis: RedisServer;
  const password = 'r3disPassw0rd';

  beforeAll(async () => {
    redis = await startRedis();
    await redis.cli(['config', 'set', 'requirepass', password]);
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('works with the right password and never prints it, right or wrong', async () => {
    const good = `redis://:${password}@127.0.0.1:${redis.port}`;
    const wrong = `redis://default:wrong-${password}@127.0.0.1:${redis.port}`;
    // The wrong password never reaches the lock, so those two run beside the first `run`; the
    // `list` comes after it, or it could see the lock still held.
    const [ran, refused, refusedRun] = await cliAll([
      { args: ['run', '-v', 'auth-key', '--', 'true'], env: { DISTLOCK_URL: good } },
      { args: ['status', 'auth-key', '--backend', wrong] },
      {
        args: ['run', '-v', '--wait', '1s', 'auth-key', '--', 'true'],
        env: { DISTLOCK_URL: wrong },
      },
    ]);
    const listed = await cli(['list', '--json', '--backend', good]);
    expect(ran!.code, ran!.stderr).toBe(0);
    expect(ran!.stderr).toMatch(/acquired "auth-key"/);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([]);
    for (const result of [refused!, refusedRun!]) {
      expect(result.code, result.stderr).toBe(ExitCode.UNAVAILABLE);
      expect(stderrLines(result)).toHaveLength(1);
    }
    for (const result of [ran!, listed, refused!, refusedRun!]) {
      expect(result.stdout + result.stderr).not.toContain(password);
    }
  });
});
