/**
 * The URLs of the Redis deployments the ioredis layer can build a client for, and what each one
 * means:
 * - `redis://[user:password@]host:port[/db]` and `rediss://…` (TLS): one server (ioredis parses it);
 * - `redis+cluster://[user:password@]host:port[,host:port…]`: a Redis Cluster, reached through any
 *   of these startup nodes (`rediss+cluster://` with TLS);
 * - `redis+sentinel://[user:password@]host:port[,host:port…]/mastername[?db=n]`: the master that
 *   these Sentinels name (`rediss+sentinel://` with TLS to the master and replicas). The credentials
 *   are the master's; Sentinels that need their own take `redisOptions.sentinelPassword`.
 *
 * A URL is never echoed in an error: it may carry a password.
 */
import { InvalidArgumentError } from '../../../core/errors.js';

/** A host and port of a cluster's startup node or of a Sentinel. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** What a URL asks for. */
export type RedisDeployment =
  | { readonly kind: 'server'; readonly url: string }
  | {
      readonly kind: 'cluster' | 'sentinel';
      readonly endpoints: readonly Endpoint[];
      readonly username?: string;
      readonly password?: string;
      readonly tls: boolean;
      /** The Sentinel master's name. */
      readonly name?: string;
      readonly db?: number;
    };

const FORMS =
  'must be redis://host:port, rediss://…, redis+cluster://host:port,host:port or ' +
  'redis+sentinel://host:port,host:port/mastername';

function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** One `host:port` (or `[v6]:port`); the port defaults to `defaultPort`. */
function endpoint(text: string, defaultPort: number): Endpoint {
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]\s/]+)(?::(\d{1,5}))?$/i.exec(text);
  const port = match?.[2] === undefined ? defaultPort : Number(match[2]);
  if (!match?.[1] || port < 1 || port > 65_535) {
    throw new InvalidArgumentError('url', `has a malformed host list (${FORMS})`);
  }
  return { host: match[1].replace(/^\[(.*)\]$/, '$1'), port };
}

/**
 * Parse and validate a Redis URL.
 * @throws InvalidArgumentError (option `url`) for anything else, without echoing the URL.
 */
export function parseRedisUrl(url: unknown): RedisDeployment {
  if (typeof url !== 'string') throw new InvalidArgumentError('url', FORMS);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'redis' || scheme === 'rediss') {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new InvalidArgumentError('url', FORMS);
    }
    // ioredis would quietly target 127.0.0.1:6379 instead.
    if (parsed.hostname === '') {
      throw new InvalidArgumentError('url', 'must name a host, e.g. redis://127.0.0.1:6379');
    }
    return { kind: 'server', url };
  }
  const kind =
    scheme === 'redis+cluster' || scheme === 'rediss+cluster'
      ? 'cluster'
      : scheme === 'redis+sentinel' || scheme === 'rediss+sentinel'
        ? 'sentinel'
        : undefined;
  if (kind === undefined) throw new InvalidArgumentError('url', FORMS);
  const rest = url.slice(scheme!.length + 3);
  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  const tail = authorityEnd < 0 ? '' : rest.slice(authorityEnd);
  // Userinfo ends at the last '@', as URL parsers read it (an unencoded '@' in a password).
  const at = authority.lastIndexOf('@');
  const userinfo = at < 0 ? '' : authority.slice(0, at);
  const hosts = authority.slice(at + 1);
  if (hosts === '') {
    throw new InvalidArgumentError('url', `names no host (${FORMS})`);
  }
  const colon = userinfo.indexOf(':');
  const username = decoded(colon < 0 ? userinfo : userinfo.slice(0, colon));
  const password = colon < 0 ? '' : decoded(userinfo.slice(colon + 1));
  const defaultPort = kind === 'sentinel' ? 26_379 : 6_379;
  const endpoints = hosts.split(',').map((text) => endpoint(text, defaultPort));
  const [path = '', query = ''] = tail.replace(/#.*$/, '').split('?');
  const search = new URLSearchParams(query);
  const dbText = search.get('db');
  const db = dbText === null ? undefined : Number(dbText);
  if (db !== undefined && (!Number.isInteger(db) || db < 0)) {
    throw new InvalidArgumentError('url', 'has a malformed db (a number >= 0)');
  }
  const name = decoded(path.replace(/^\//, ''));
  if (kind === 'sentinel' && (name === '' || name.includes('/'))) {
    throw new InvalidArgumentError(
      'url',
      'must name the master, e.g. redis+sentinel://host:26379,host:26380/mymaster',
    );
  }
  if (kind === 'cluster' && (name !== '' || db !== undefined)) {
    throw new InvalidArgumentError('url', 'of a cluster takes no database (Cluster has only db 0)');
  }
  return {
    kind,
    endpoints,
    ...(username === '' ? {} : { username }),
    ...(password === '' ? {} : { password }),
    tls: scheme!.startsWith('rediss'),
    ...(kind === 'sentinel' ? { name } : {}),
    ...(db === undefined ? {} : { db }),
  };
}
