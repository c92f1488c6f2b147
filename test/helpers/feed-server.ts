import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the feed server sends for one path; tests change it between polls. */
export type FeedBehaviour =
  | {
      kind: 'body';
      body: string | Buffer;
      contentType?: string;
      etag?: boolean;
      /** Delay in ms before the response is sent, so that requests overlap. */
      delayMs?: number;
    }
  | { kind: 'status'; status: number; body?: string }
  | { kind: 'hang' };

/**
 * A feed server on 127.0.0.1 for tests. It answers conditional GETs with
 * ETags derived from the body, counts requests per path, and fails the test
 * run loudly for a path nobody configured.
 */
export class FeedServer {
  private readonly behaviours = new Map<string, FeedBehaviour>();
  private readonly hanging = new Set<ServerResponse>();
  readonly requests: { path: string; ifNoneMatch?: string }[] = [];
  private readonly inFlight = new Map<string, number>();
  private readonly mostInFlight = new Map<string, number>();
  private server?: Server;
  private base = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    this.base = `http://127.0.0.1:${port}`;
    return this;
  }

  url(path: string): string {
    return `${this.base}${path}`;
  }

  set(path: string, behaviour: FeedBehaviour): void {
    this.behaviours.set(path, behaviour);
  }

  /** Returns the largest number of requests for `path` that were in flight at once. */
  maxInFlight(path: string): number {
    return this.mostInFlight.get(path) ?? 0;
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', this.base).pathname;
    const ifNoneMatch = req.headers['if-none-match'];
    this.requests.push({ path, ifNoneMatch });
    const behaviour = this.behaviours.get(path);
    if (!behaviour) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no feed configured at ${path}\n`);
      return;
    }
    if (behaviour.kind === 'hang') {
      this.hanging.add(res);
      return;
    }
    if (behaviour.kind === 'status') {
      res.writeHead(behaviour.status, { 'content-type': 'text/plain' }).end(behaviour.body ?? '');
      return;
    }
    const headers: Record<string, string> = {
      'content-type': behaviour.contentType ?? 'text/plain',
    };
    if (behaviour.etag !== false) {
      headers.etag = `"${createHash('sha256').update(behaviour.body).digest('hex').slice(0, 16)}"`;
      if (ifNoneMatch === headers.etag) {
        res.writeHead(304, { etag: headers.etag }).end();
        return;
      }
    }
    if (behaviour.delayMs === undefined) {
      res.writeHead(200, headers).end(behaviour.body);
      return;
    }
    const count = (this.inFlight.get(path) ?? 0) + 1;
    this.inFlight.set(path, count);
    this.mostInFlight.set(path, Math.max(count, this.mostInFlight.get(path) ?? 0));
    setTimeout(() => {
      this.inFlight.set(path, (this.inFlight.get(path) ?? 1) - 1);
      res.writeHead(200, headers).end(behaviour.body);
    }, behaviour.delayMs);
  }
}
