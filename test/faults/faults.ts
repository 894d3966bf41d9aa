/** The kinds of fault the injector knows, and the groups the backend table picks from. */

export const FAULT_KINDS = [
  /** SIGSTOP the lock holder between its read and its write, past its TTL; then SIGCONT. */
  'holder-pause',
  /** SIGKILL the lock holder (a new worker takes its slot). */
  'holder-kill',
  /** SIGSTOP the lock server (a cluster: one member that is not the leader) past the TTL. */
  'server-pause',
  /** SIGKILL the lock server (a cluster: one non-leader member), restart it on its data. */
  'server-restart',
  /** SIGSTOP the cluster's leader past the TTL. */
  'leader-pause',
  /** SIGKILL the cluster's leader, restart it on its data. */
  'leader-restart',
  /** SIGSTOP a majority of the servers (quorum lost) past the TTL. */
  'quorum-pause',
  /** Every client's links to every server: added one-way latency (TTL/5 each way). */
  'net-latency',
  /** The holder's links: a black hole past the TTL; its connections reset when it heals. */
  'net-blackhole',
  /** Every client's connections reset at once. */
  'net-drop',
  /** The holder's links: client → server bytes held past the TTL, then delivered. */
  'net-stall-up',
  /** Every client's links: server → client bytes held past the TTL, then delivered. */
  'net-stall-down',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

/** Faults of the lock's clients: every backend. */
export const HOLDER_FAULTS: readonly FaultKind[] = ['holder-pause', 'holder-kill'];

/** Faults between clients and servers: every backend with a server. */
export const NETWORK_FAULTS: readonly FaultKind[] = [
  'net-latency',
  'net-blackhole',
  'net-drop',
  'net-stall-up',
  'net-stall-down',
];

/** A backend with one lock server whose state survives a restart (persistence). */
export const SINGLE_SERVER_FAULTS: readonly FaultKind[] = [
  ...HOLDER_FAULTS,
  'server-pause',
  'server-restart',
  ...NETWORK_FAULTS,
];

/** A backend with a cluster that elects a leader (etcd). */
export const CLUSTER_FAULTS: readonly FaultKind[] = [
  ...SINGLE_SERVER_FAULTS,
  'leader-pause',
  'leader-restart',
  'quorum-pause',
];

export function isFaultKind(name: string): name is FaultKind {
  return (FAULT_KINDS as readonly string[]).includes(name);
}
