import { Etcd3 } from 'etcd3';
import type { LockClient } from './contender.js';

/**
 * A fresh etcd3 client with its own gRPC connection: grpc-js shares subchannels between clients
 * of the same target unless told otherwise, which would put all "separate" clients on one socket.
 */
export async function connectEtcd(port: number): Promise<Etcd3> {
  const client = new Etcd3({
    hosts: `http://127.0.0.1:${port}`,
    grpcOptions: { 'grpc.use_local_subchannel_pool': 1 },
  });
  await client.get('bench:ready').string();
  return client;
}

/** A contender's client on its own etcd connection ({@link connectEtcd}), closed with it. */
export async function onOwnEtcdConnection<Handle>(
  port: number,
  client: (etcd: Etcd3) => Omit<LockClient<Handle>, 'close'>,
): Promise<LockClient<Handle>> {
  const etcd = await connectEtcd(port);
  const { acquire, release } = client(etcd);
  return { acquire, release, close: async () => etcd.close() };
}
