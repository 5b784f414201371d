import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { followStream, type SseEvent } from '../src/lib/sse';

/** A real HTTP server on a random port that answers each request with the next handler. */
async function serve(handlers: ((req: IncomingMessage, res: import('node:http').ServerResponse) => void)[]) {
  const seen: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    seen.push(req);
    const handler = handlers[Math.min(seen.length - 1, handlers.length - 1)]!;
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, seen, url: `http://127.0.0.1:${port}/api/v1/orders/o1/events` };
}

let server: Server | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
});

describe('followStream', () => {
  it('sends the token, reconnects after a drop with Last-Event-ID, and delivers each event once', async () => {
    const events: SseEvent[] = [];
    const controller = new AbortController();
    const states: boolean[] = [];
    const s = await serve([
      (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        // One event split across writes, then the connection drops mid-event.
        res.write(': hello\n\nevent: snapshot\nid: 3-1\nda');
        res.write('ta: {"status":"paid"}\n\nevent: order.half\ndata: lost');
        setTimeout(() => res.destroy(), 20);
      },
      (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write('event: suborder.shipped\nid: 3-2\ndata: {"status":"shipped"}\n\n');
      },
    ]);
    server = s.server;
    const done = followStream(s.url, {
      authorization: async () => 'Bearer token-1',
      signal: controller.signal,
      initialDelay: 10,
      onState: (up) => states.push(up),
      onEvent: (event) => {
        events.push(event);
        if (events.length === 2) controller.abort();
      },
    });
    await done;
    expect(events.map((e) => [e.event, e.id])).toEqual([
      ['snapshot', '3-1'],
      ['suborder.shipped', '3-2'],
    ]);
    expect(s.seen).toHaveLength(2);
    expect(s.seen[0]!.headers.authorization).toBe('Bearer token-1');
    expect(s.seen[0]!.headers['last-event-id']).toBeUndefined();
    expect(s.seen[1]!.headers['last-event-id']).toBe('3-1');
    expect(states).toEqual([true, false, true]);
  });

  it('gives up on an order it may not see, without retrying', async () => {
    const s = await serve([
      (_req, res) => {
        res.writeHead(404, { 'Content-Type': 'application/json' });
        res.end('{"code":"not_found","message":"no such order","details":[]}');
      },
    ]);
    server = s.server;
    let refused = 0;
    await followStream(s.url, {
      authorization: async () => 'Bearer token-1',
      signal: new AbortController().signal,
      initialDelay: 10,
      onRefused: (status) => (refused = status),
      onEvent: () => undefined,
    });
    expect(refused).toBe(404);
    expect(s.seen).toHaveLength(1);
  });

  it('retries a 401 once with a fresh token', async () => {
    const s = await serve([
      (_req, res) => {
        res.writeHead(401);
        res.end();
      },
      (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write('event: snapshot\nid: 1\ndata: {}\n\n');
      },
    ]);
    server = s.server;
    const tokens = ['Bearer old', 'Bearer new', 'Bearer new'];
    const controller = new AbortController();
    const events: SseEvent[] = [];
    await followStream(s.url, {
      authorization: async () => tokens.shift() ?? 'Bearer new',
      signal: controller.signal,
      initialDelay: 10,
      onEvent: (event) => {
        events.push(event);
        controller.abort();
      },
    });
    expect(events).toHaveLength(1);
    expect(s.seen.map((r) => r.headers.authorization)).toEqual(['Bearer old', 'Bearer new']);
  });
});
