import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';

/** A loopback TCP proxy that slows the client → server direction down, so a push is still sending when a test acts. */
export interface ThrottleProxy {
  /** `127.0.0.1:PORT` to use instead of the upstream host. */
  host: string;
  /** Bytes forwarded upstream so far, over all connections. */
  forwarded(): number;
  /** Stops accepting and cuts every connection (clients see a reset, then a refused connection). */
  close(): Promise<void>;
}

/**
 * Starts a proxy to `upstream` (`HOST:PORT`) that forwards requests at most `bytesPerSecond` (shared by
 * all its connections) and responses at full speed.
 */
export async function startThrottleProxy(upstream: string, bytesPerSecond: number): Promise<ThrottleProxy> {
  const i = upstream.lastIndexOf(':');
  const target = { host: upstream.slice(0, i), port: Number(upstream.slice(i + 1)) };
  const sockets = new Set<Socket>();
  let forwarded = 0;
  // When the bytes sent so far may go out at the allowed rate: a client that is ahead waits until then.
  let scheduleEnd = Date.now();
  const server = createServer((client) => {
    const upstreamSocket = connect(target);
    for (const s of [client, upstreamSocket]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      // A reset on one side ends both; the peer then sees its own error, which is what the test wants.
      s.on('error', () => undefined);
    }
    client.on('close', () => upstreamSocket.destroy());
    upstreamSocket.on('close', () => client.destroy());
    upstreamSocket.pipe(client);
    client.on('data', (chunk: Buffer) => {
      forwarded += chunk.length;
      upstreamSocket.write(chunk);
      const now = Date.now();
      scheduleEnd = Math.max(scheduleEnd, now) + (chunk.length * 1000) / bytesPerSecond;
      const wait = scheduleEnd - now;
      if (wait > 5) {
        client.pause();
        setTimeout(() => client.resume(), wait).unref();
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    forwarded: () => forwarded,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
