import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  openBackend,
  parseDuration,
  redactSecrets,
  redactUrl,
  secretsOf,
} from '../src/backend-url.js';
import { InvalidArgumentError, LockError } from '../src/core/errors.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['1.5s', 1_500],
    ['5m', 300_000],
    ['1h', 3_600_000],
    // A bare number is seconds, as for flock -w, timeout(1) and etcdctl --ttl.
    ['5', 5_000],
    ['2.5', 2_500],
    ['0', 0],
    [' 10S ', 10_000],
  ])('%s → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 'abc', '10x', '-5s', '5 minutes', '1e3', 's', '99999h', '2500000'])(
    'rejects %j naming the option',
    (text) => {
      const error = (() => {
        try {
          parseDuration(text, '--ttl');
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).option).toBe('--ttl');
    },
  );
});

describe('redactUrl', () => {
  it.each([
    ['redis://user:secret@127.0.0.1:6379/0', 'redis://user:***@127.0.0.1:6379/0'],
    ['rediss://:secret@cache:6380', 'rediss://:***@cache:6380'],
    ['postgres://app:p%40ss@db/app', 'postgres://app:***@db/app'],
    ['redis://u:we@ird:pa/ss@host:1', 'redis://u:***@host:1'],
    ['etcd://root:pw@a:2379,b:2379', 'etcd://root:***@a:2379,b:2379'],
    ['redis://host:6379', 'redis://host:6379'],
    ['redis://user@host', 'redis://user@host'],
    ['redis://host/?password=secret&db=1', 'redis://host/?password=***&db=1'],
    ['redis+cluster://u:secret@h1:7000,h2:7001', 'redis+cluster://u:***@h1:7000,h2:7001'],
    ['rediss+cluster://:secret@h1:7000', 'rediss+cluster://:***@h1:7000'],
    [
      'redis+sentinel://u:se@cret@h1:26379,h2:26380/mymaster',
      'redis+sentinel://u:***@h1:26379,h2:26380/mymaster',
    ],
    [
      'DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=Eby8vdM02x==;BlobEndpoint=http://127.0.0.1:1/dev;',
      'DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=***;BlobEndpoint=http://127.0.0.1:1/dev;',
    ],
    [
      'https://acct.blob.core.windows.net/locks?sv=2023-11-03&sp=rwl&sig=abc%2Bdef%3D',
      'https://acct.blob.core.windows.net/locks?sv=2023-11-03&sp=rwl&sig=***',
    ],
  ])('%s', (url, redacted) => {
    expect(redactUrl(url)).toBe(redacted);
  });

  it('redacts every URL inside a longer message', () => {
    expect(redactSecrets('a redis://x:one@h:1 and "etcd://y:two@h:2" done')).toBe(
      'a redis://x:***@h:1 and "etcd://y:***@h:2" done',
    );
  });
});

describe('secretsOf', () => {
  it.each([
    ['redis://user:p%40ss@host:1', ['p%40ss', 'p@ss']],
    ['rediss://:plain@host', ['plain']],
    ['redis://host:6379', []],
    ['redis://user@host', []],
    ['DefaultEndpointsProtocol=http;AccountName=a;AccountKey=k3y==;', ['k3y==']],
    ['redis://host/?password=hunter2', ['hunter2']],
    ['redis+cluster://u:p%40ss@h1:1,h2:2', ['p%40ss', 'p@ss']],
    ['redis+sentinel://:plain@h1:1,h2:2/mymaster', ['plain']],
  ])('%s → %j', (url, secrets) => {
    expect(secretsOf(url)).toEqual(secrets);
  });
});

async function openError(url: string): Promise<InvalidArgumentError> {
  try {
    const backend = await openBackend(url);
    await backend.close();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return error as InvalidArgumentError;
  }
  throw new Error(`openBackend(${url}) did not fail`);
}

describe('openBackend', () => {
  it('opens memory:', async () => {
    const backend = await openBackend('memory:');
    expect(backend.name).toBe('memory');
    await backend.close();
  });

  it('opens redis+cluster:// and redis+sentinel:// (without a reachable server) and never shows their password', async () => {
    for (const url of [
      'redis+cluster://u:secret-c@127.0.0.1:1,127.0.0.1:2',
      'redis+sentinel://u:secret-s@127.0.0.1:1,127.0.0.1:2/mymaster',
    ]) {
      const backend = await openBackend(url, { redis: { commandTimeoutMs: 500 } });
      expect(backend.name).toBe('redis');
      const error = await backend
        .tryAcquire({ key: 'k', token: 't', ttlMs: 1_000 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockError);
      expect((error as LockError).retryable).toBe(true);
      expect(inspect(error, { depth: 20 })).not.toMatch(/secret-/);
      await backend.close();
    }
  });

  it('opens postgres:// and postgresql:// without connecting yet', async () => {
    for (const url of ['postgres://u:secret@db:5432/app', 'postgresql://u@db/app']) {
      const backend = await openBackend(url);
      expect(backend.name).toBe('postgres');
      expect(backend.name).not.toContain('secret');
      await backend.close();
    }
  });

  it('opens azblob://CONTAINER with the account of AZURE_STORAGE_CONNECTION_STRING, and a container URL with a SAS', async () => {
    const connectionString =
      'DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=c2VjcmV0;BlobEndpoint=http://127.0.0.1:1/dev;';
    const saved = process.env.AZURE_STORAGE_CONNECTION_STRING;
    try {
      process.env.AZURE_STORAGE_CONNECTION_STRING = connectionString;
      for (const url of [
        'azblob://locks',
        'https://acct.blob.core.windows.net/locks?sv=2023-11-03&sp=rwl&sig=secret',
      ]) {
        const backend = await openBackend(url);
        expect(backend.name).toBe('azure-blob');
        expect(backend.capabilities.minTtlMs).toBe(15_000);
        await backend.close();
      }
      delete process.env.AZURE_STORAGE_CONNECTION_STRING;
      const error = await openError('azblob://locks');
      expect(error.message).toMatch(/AZURE_STORAGE_CONNECTION_STRING, which is not set/);
      const backend = await openBackend('azblob://locks', {
        azureConnectionString: connectionString,
      });
      expect(backend.name).toBe('azure-blob');
      await backend.close();
      const bad = await openBackend('azblob://locks', {
        azureConnectionString: 'AccountKey=secret;garbage',
      }).catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(InvalidArgumentError);
      expect((bad as InvalidArgumentError).option).toBe('url');
      expect((bad as Error).message).not.toContain('secret');
    } finally {
      if (saved === undefined) delete process.env.AZURE_STORAGE_CONNECTION_STRING;
      else process.env.AZURE_STORAGE_CONNECTION_STRING = saved;
    }
  });

  it('opens redlock:// with one node per host, without connecting yet', async () => {
    const backend = await openBackend('redlock://u:secret@a:1,b:2,c:3/2');
    expect(backend.name).toBe('redlock');
    expect(backend.capabilities.fifo).toBe(false);
    await backend.close();
  });

  it.each([
    ['redlock://u:secret@a:1,,c:3', /not a redlock URL/],
    ['redlock://u:secret@a:1,b:2', /odd number of at least 3/],
    ['postgres://u:secret@/app', /names no host/],
    ['azblob://acct:secret@container', /carries credentials.*AZURE_STORAGE_CONNECTION_STRING/],
    ['azblob://', /names no container/],
    ['azblob://Bad_Container', /container name/],
    [
      'DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=secret;BlobEndpoint=http://h/dev',
      /names no container.*azblob:\/\/CONTAINER/,
    ],
    ['https://acct.blob.core.windows.net/?sv=1&sig=secret', /container URL/],
    ['gopher://u:secret@h:1', /unknown backend "gopher:"/],
    ['not a url', /is not a backend URL/],
    ['redis://u:secret@', /names no host/],
    ['redis://u:secret@host:port', /malformed host/],
    ['etcd://a:1,,b:2', /malformed host/],
    ['redis+cluster://u:secret@', /names no host/],
    ['redis+cluster://u:secret@a:1,,b:2', /malformed host/],
    ['redis+cluster://u:secret@a:1,b:2/3', /takes no database/],
    ['redis+sentinel://u:secret@a:1,b:2', /must name the master/],
    ['redis+sentinel://u:secret@a:1,b:2/', /must name the master/],
    ['redis+sentinel://u:secret@a:1/m?db=x', /malformed db/],
    ['redis+nope://u:secret@a:1', /unknown backend "redis\+nope:"/],
    ['file://relative/dir', /not a usable file URL/],
  ])('rejects %s with a typed, redacted error', async (url, message) => {
    const error = await openError(url);
    expect(error.option).toBe('url');
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain('secret');
  });
});
