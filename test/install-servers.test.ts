/**
 * The test-server installer (test/harness/install-servers.ts): two installers started at once never
 * run apt-get at the same time, only what is missing is installed, a second run installs nothing,
 * and without root it fails at once with the exact command. apt-get is a fake on PATH that records
 * when each run starts and ends: no package is really installed.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { installMissingServers } from './harness/install-servers.js';
import { tempDir } from './harness/process.js';
import { locateCommand, REQUIRED_SERVERS, type RequiredServer } from './harness/servers.js';
import { readLines } from './cli/cli-process.js';

const RUN_INSTALLER = fileURLToPath(new URL('./fixtures/run-installer.ts', import.meta.url));

/** A fake apt-get: logs "<pid> start|end <ns> <args>", and "installs" PKG as an executable PKG-cmd. */
const FAKE_APT_GET = `#!/bin/sh
echo "$$ start $(date +%s%N) $*" >> "$FAKE_APT_LOG"
sleep 0.4
while [ "$1" = "-o" ]; do shift 2; done
if [ "$1" = "install" ]; then
  shift
  for arg in "$@"; do
    case "$arg" in -*) ;; *) printf '#!/bin/sh\\n' > "$FAKE_BIN/$arg-cmd"; chmod +x "$FAKE_BIN/$arg-cmd";; esac
  done
fi
echo "$$ end $(date +%s%N)" >> "$FAKE_APT_LOG"
`;

function fakeServer(name: string): RequiredServer {
  return {
    name,
    purpose: `the ${name} server`,
    commands: [`${name}-cmd`],
    source: { apt: [name] },
  };
}

describe('installing the test servers', () => {
  const dir = tempDir('distlock-installer-');
  const bin = join(dir.path, 'bin');
  const log = join(dir.path, 'apt.log');
  const lockPath = join(dir.path, 'install.lock');
  const env = {
    ...process.env,
    PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`,
    FAKE_BIN: bin,
    FAKE_APT_LOG: log,
  };
  afterAll(() => dir.remove());

  function installer(servers: readonly RequiredServer[]) {
    return new Promise<{ installedPackages: string[]; stdout: string }>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', RUN_INSTALLER],
        {
          env: { ...env, DISTLOCK_TEST_INSTALL: JSON.stringify({ servers, lockPath }) },
          timeout: 60_000,
        },
        (error, stdout, stderr) => {
          if (error) return reject(new Error(`${error.message}\n${stderr}`));
          const last = stdout.trim().split('\n').at(-1) ?? '';
          resolve({ ...(JSON.parse(last) as { installedPackages: string[] }), stdout });
        },
      );
    });
  }

  /** apt-get runs from the fake's log: [pid, start ns, end ns, args]. */
  function aptRuns() {
    const runs = new Map<string, { start: bigint; end?: bigint; args: string }>();
    for (const line of readLines(log)) {
      const [pid = '', kind, at = '0', ...args] = line.split(' ');
      if (kind === 'start') runs.set(pid, { start: BigInt(at), args: args.join(' ') });
      else runs.get(pid)!.end = BigInt(at);
    }
    return [...runs.values()].sort((a, b) => (a.start < b.start ? -1 : 1));
  }

  it('runs apt-get from one installer at a time, only for what is missing, and once', async () => {
    mkdirSync(bin);
    writeFileSync(join(bin, 'apt-get'), FAKE_APT_GET);
    chmodSync(join(bin, 'apt-get'), 0o755);
    // fake-c is already installed: it must not be installed again.
    writeFileSync(join(bin, 'fake-c-cmd'), '#!/bin/sh\n');
    chmodSync(join(bin, 'fake-c-cmd'), 0o755);
    const servers = [fakeServer('fake-a'), fakeServer('fake-b'), fakeServer('fake-c')];

    const reports = await Promise.all([installer(servers), installer(servers)]);

    const runs = aptRuns();
    for (let i = 1; i < runs.length; i++) {
      expect(
        runs[i]!.start > runs[i - 1]!.end!,
        `apt-get runs overlap: ${readLines(log).join('\n')}`,
      ).toBe(true);
    }
    expect(runs.map((run) => run.args)).toEqual([
      '-o DPkg::Lock::Timeout=120 update -qq',
      '-o DPkg::Lock::Timeout=120 install -y -qq fake-a fake-b',
    ]);
    // One installer installed both missing packages, one message each; the other found nothing left.
    const installed = reports.map((report) => report.installedPackages);
    expect(installed).toContainEqual(['fake-a', 'fake-b']);
    expect(installed).toContainEqual([]);
    const messages = reports.flatMap((report) =>
      report.stdout.split('\n').filter((line) => line.includes('installing')),
    );
    expect(messages).toHaveLength(2);
    expect(messages.find((line) => line.includes('fake-a'))).toMatch(
      /installing fake-a: fake-a-cmd not found \(the fake-a server\)/,
    );

    // Everything is there now: a later run does not call apt-get at all.
    const again = await installer(servers);
    expect(again.installedPackages).toEqual([]);
    expect(aptRuns()).toHaveLength(runs.length);
  }, 90_000);

  it('fails at once without root, with the exact command to run', async () => {
    const before = readLines(log).length;
    await expect(
      installMissingServers({
        servers: [fakeServer('fake-z'), fakeServer('fake-y')],
        env,
        isRoot: false,
        lockPath,
        log: () => expect.fail('nothing is installed without root'),
      }),
    ).rejects.toThrow(
      /fake-z: fake-z-cmd not found[\s\S]*Not running as root[\s\S]*sudo apt-get update && sudo apt-get install -y fake-z fake-y$/,
    );
    expect(readLines(log)).toHaveLength(before);
  });

  it('finds PostgreSQL off PATH, where Debian puts it', () => {
    const postgres = REQUIRED_SERVERS.find((server) => server.name === 'postgresql')!;
    // Only the system directories on PATH: initdb is in /usr/lib/postgresql/<version>/bin.
    const initdb = locateCommand(postgres, 'initdb', { PATH: '/usr/bin:/bin' });
    expect(initdb).toMatch(/\/usr\/lib\/postgresql\/\d+\/bin\/initdb$/);
    expect(existsSync(initdb!)).toBe(true);
  });
});
