import { createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

/**
 * A forwarding HTTP proxy on 127.0.0.1 for tests. It forwards absolute-form
 * requests and opens CONNECT tunnels, only to 127.0.0.1, and records each
 * request it handles. With `credentials` (`user:password`), a CONNECT
 * without the matching Basic `Proxy-Authorization` gets 407.
 */
export class ForwardProxy {
  /** One line per request: `GET http://...` or `CONNECT host:port`. */
  readonly requests: string[] = [];
  /** The `Proxy-Authorization` header of each CONNECT request, absent ones included. */
  readonly authorizations: (string | undefined)[] = [];
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  url = '';

  constructor(private readonly credentials?: string) {}

  async start(): Promise<this> {
    const server = createServer((incoming, outgoing) => {
      this.requests.push(`${incoming.method} ${incoming.url}`);
      const target = new URL(incoming.url ?? '');
      if (target.hostname !== '127.0.0.1') {
        outgoing.writeHead(403).end('only 127.0.0.1 is forwarded\n');
        return;
      }
      const forwarded = request(
        target,
        { method: incoming.method, headers: incoming.headers },
        (response) => {
          outgoing.writeHead(response.statusCode ?? 502, response.headers);
          response.pipe(outgoing);
        },
      );
      forwarded.on('error', () => outgoing.writeHead(502).end());
      incoming.pipe(forwarded);
    });
    server.on('connect', (incoming, client: Socket) => {
      this.requests.push(`CONNECT ${incoming.url}`);
      const received = incoming.headers['proxy-authorization'];
      this.authorizations.push(received);
      const expected =
        this.credentials && `Basic ${Buffer.from(this.credentials).toString('base64')}`;
      if (expected !== undefined && received !== expected) {
        client.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n');
        return;
      }
      const [host, port] = (incoming.url ?? '').split(':');
      if (host !== '127.0.0.1') {
        client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
        return;
      }
      const upstream = connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.pipe(client);
        client.pipe(upstream);
      });
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }
}
