import { createRequire } from 'node:module';
import { join } from 'node:path';

/**
 * A read-only look at a running PM2 daemon over its RPC socket, with PM2's own socket
 * modules but without its API: loading the API costs several times more than asking.
 * `animus status` and `list` use this; anything that changes state uses the API.
 */
export async function listOverRpc<T>(pm2Home: string, timeoutMs = 10_000): Promise<T[]> {
  const require = createRequire(import.meta.url);
  const axon = require('pm2/modules/pm2-axon') as { socket(type: 'req'): AxonReq };
  const rpc = require('pm2/modules/pm2-axon-rpc') as { Client: new (sock: AxonReq) => RpcClient };
  const req = axon.socket('req');
  const client = new rpc.Client(req);
  return new Promise<T[]>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`no answer from the PM2 daemon within ${timeoutMs / 1000} s`)), timeoutMs);
    const finish = (error: Error | null, list?: T[]) => {
      clearTimeout(timer);
      req.close();
      if (error) reject(error);
      else resolve(list ?? []);
    };
    req.once('error', (error: Error) => finish(error));
    req.once('connect', () => client.call('getMonitorData', {}, (error: Error | null, list?: T[]) => finish(error, list)));
    req.connect(join(pm2Home, 'rpc.sock'));
  });
}

interface AxonReq {
  connect(path: string): unknown;
  close(): void;
  once(event: string, listener: (...args: never[]) => void): unknown;
}

interface RpcClient {
  call(method: string, args: object, cb: (error: Error | null, result?: never) => void): void;
}
