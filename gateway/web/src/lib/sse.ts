/** One server-sent event (https://html.spec.whatwg.org/multipage/server-sent-events.html). */
export interface SseEvent {
  /** The `event:` field, "message" when absent. */
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  /** The last event id seen so far on this stream (it carries over to later events). */
  id: string;
}

/**
 * An incremental parser of a text/event-stream: feed it decoded text in chunks split
 * anywhere, get the complete events back. Comments (lines starting with ":") are skipped;
 * an event without data is not dispatched, as in browsers.
 */
export class SseParser {
  private buffer = '';
  private pendingCr = false;
  private data: string[] = [];
  private event = '';
  private hasData = false;
  /** The last event id, for Last-Event-ID when reconnecting. */
  lastEventId = '';
  /** The reconnection delay the server asked for (`retry:`), in milliseconds. */
  retry: number | null = null;

  /** Forgets a half-received event (the connection dropped), keeping the last event id. */
  reset(): void {
    this.buffer = '';
    this.pendingCr = false;
    this.data = [];
    this.event = '';
    this.hasData = false;
  }

  push(chunk: string): SseEvent[] {
    const out: SseEvent[] = [];
    let text = chunk;
    // A "\r\n" split across chunks: the "\r" ended a line already, skip the "\n".
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.pendingCr = false;
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      this.line(this.buffer.slice(start, i), out);
      if (c === '\r') {
        if (i + 1 === this.buffer.length) this.pendingCr = true;
        else if (this.buffer[i + 1] === '\n') i++;
      }
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  private line(line: string, out: SseEvent[]): void {
    if (line === '') {
      if (this.hasData) {
        out.push({ event: this.event || 'message', data: this.data.join('\n'), id: this.lastEventId });
      }
      this.data = [];
      this.event = '';
      this.hasData = false;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        this.hasData = true;
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break;
    }
  }
}

export interface StreamOptions {
  /** The Authorization header value now (it may change between reconnects). */
  authorization: () => Promise<string | null>;
  onEvent: (event: SseEvent) => void;
  /** Connected (true) or lost and retrying (false). */
  onState?: (connected: boolean) => void;
  /** The stream was refused with this status (401, 403, 404): it is not retried. */
  onRefused?: (status: number) => void;
  signal: AbortSignal;
  /** Waits between reconnects, growing to maxDelay. */
  initialDelay?: number;
  maxDelay?: number;
}

/**
 * Follows an SSE endpoint with fetch(), so the request can carry an Authorization header
 * (EventSource cannot). Reconnects with Last-Event-ID after a drop, until `signal` aborts.
 */
export async function followStream(url: string, options: StreamOptions): Promise<void> {
  const parser = new SseParser();
  let delay = options.initialDelay ?? 1000;
  const maxDelay = options.maxDelay ?? 15000;
  while (!options.signal.aborted) {
    parser.reset();
    try {
      const headers: Record<string, string> = { Accept: 'text/event-stream' };
      const auth = await options.authorization();
      if (auth) headers.Authorization = auth;
      if (parser.lastEventId) headers['Last-Event-ID'] = parser.lastEventId;
      const response = await fetch(url, { headers, signal: options.signal, cache: 'no-store' });
      if ([400, 401, 403, 404].includes(response.status)) {
        if (response.status === 401 && auth) {
          // The access token may have expired: one more try with a fresh one.
          options.onState?.(false);
          await sleep(200, options.signal);
          const fresh = await options.authorization();
          if (fresh && fresh !== auth) continue;
        }
        options.onRefused?.(response.status);
        return;
      }
      if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
      options.onState?.(true);
      delay = options.initialDelay ?? 1000;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const event of parser.push(value)) options.onEvent(event);
      }
    } catch (error) {
      if (options.signal.aborted) return;
      void error;
    }
    if (options.signal.aborted) return;
    options.onState?.(false);
    await sleep(parser.retry ?? delay, options.signal);
    delay = Math.min(delay * 2, maxDelay);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
