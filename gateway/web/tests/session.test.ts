import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/** What the app sent, as the gateway would read it. */
interface Sent {
  path: string;
  method: string;
  delivery: string | null;
  credentials: RequestCredentials;
  authorization: string | null;
  body: unknown;
}

/** A Storage kept in a Map, as a browser's. */
class MemoryStorage implements Storage {
  private items = new Map<string, string>();
  get length(): number {
    return this.items.size;
  }
  clear(): void {
    this.items.clear();
  }
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  key(index: number): string | null {
    return [...this.items.keys()][index] ?? null;
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
  setItem(key: string, value: string): void {
    this.items.set(key, String(value));
  }
  keys(): string[] {
    return [...this.items.keys()];
  }
}

const PAIR = {
  access_token: 'access-1',
  token_type: 'Bearer',
  expires_in: '900',
  // The gateway moved the token into the cookie.
  refresh_token: '',
  refresh_expires_in: '1209600',
  user_id: 'user-1',
  roles: ['customer'],
};

let sent: Sent[];
let answers: Response[];
let local: MemoryStorage;
let tab: MemoryStorage;

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' },
  });
}

/** The client module, loaded fresh over a fetch that records requests and plays `answers`. */
async function client() {
  vi.resetModules();
  const BaseRequest = globalThis.Request;
  // The app runs at an origin; Node has none, so relative URLs get one.
  vi.stubGlobal(
    'Request',
    class extends BaseRequest {
      constructor(input: RequestInfo | URL, init?: RequestInit) {
        super(typeof input === 'string' ? new URL(input, 'http://shop.test') : input, init);
      }
    },
  );
  vi.stubGlobal('fetch', async (request: Request) => {
    const text = await request.text();
    sent.push({
      path: new URL(request.url).pathname,
      method: request.method,
      delivery: request.headers.get('X-Refresh-Token-Delivery'),
      credentials: request.credentials,
      authorization: request.headers.get('Authorization'),
      body: text ? JSON.parse(text) : undefined,
    });
    return answers.shift() ?? json(500, { code: 'internal', message: 'no answer' });
  });
  return import('../src/api/client');
}

beforeEach(() => {
  vi.useFakeTimers();
  sent = [];
  answers = [];
  local = new MemoryStorage();
  tab = new MemoryStorage();
  vi.stubGlobal('localStorage', local);
  vi.stubGlobal('sessionStorage', tab);
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('the session', () => {
  it('logs in asking for the refresh cookie and keeps no token in any storage', async () => {
    const { login, session, SIGNED_IN_KEY } = await client();
    answers.push(json(200, PAIR));
    await login('ada@example.com', 'correct horse battery staple');
    expect(sent).toEqual([
      {
        path: '/api/v1/auth/login',
        method: 'POST',
        delivery: 'cookie',
        credentials: 'same-origin',
        authorization: null,
        body: { email: 'ada@example.com', password: 'correct horse battery staple' },
      },
    ]);
    expect(session.value?.accessToken).toBe('access-1');
    expect(session.value?.roles).toEqual(['customer']);
    // Only the hint that this browser signed in; no token anywhere.
    expect(local.keys()).toEqual([SIGNED_IN_KEY]);
    expect(local.getItem(SIGNED_IN_KEY)).toBe('1');
    expect(tab.length).toBe(0);
  });

  it('never stores a refresh token even when an answer carries one', async () => {
    const { adopt } = await client();
    adopt({ ...PAIR, refresh_token: 'in-the-body' });
    for (const storage of [local, tab]) {
      for (const key of storage.keys()) expect(storage.getItem(key)).not.toContain('in-the-body');
    }
  });

  it('restores a session at start from the cookie, sending no token', async () => {
    const { restoreSession, session, SIGNED_IN_KEY } = await client();
    local.setItem(SIGNED_IN_KEY, '1');
    answers.push(json(200, { ...PAIR, access_token: 'access-2' }));
    await restoreSession();
    expect(sent).toEqual([
      {
        path: '/api/v1/auth/refresh',
        method: 'POST',
        delivery: 'cookie',
        credentials: 'same-origin',
        authorization: null,
        body: {},
      },
    ]);
    expect(session.value?.accessToken).toBe('access-2');
  });

  it('asks nothing at start of a browser that did not sign in', async () => {
    const { restoreSession, session } = await client();
    await restoreSession();
    expect(sent).toEqual([]);
    expect(session.value).toBeNull();
  });

  it('forgets the session when the cookie is refused', async () => {
    const { adopt, refresh, session, SIGNED_IN_KEY } = await client();
    adopt(PAIR);
    answers.push(json(401, { code: 'unauthenticated', message: 'invalid refresh token' }));
    expect(await refresh()).toBe(false);
    expect(session.value).toBeNull();
    expect(local.getItem(SIGNED_IN_KEY)).toBeNull();
  });

  it('keeps the session through an outage, to try again', async () => {
    const { adopt, refresh, session } = await client();
    adopt(PAIR);
    answers.push(json(503, { code: 'unavailable', message: 'try again' }));
    expect(await refresh()).toBe(false);
    expect(session.value?.accessToken).toBe('access-1');
  });

  it('refreshes once when asked twice at once', async () => {
    const { refresh } = await client();
    answers.push(json(200, PAIR));
    const both = await Promise.all([refresh(), refresh()]);
    expect(both).toEqual([true, true]);
    expect(sent.map((s) => s.path)).toEqual(['/api/v1/auth/refresh']);
  });

  it('refreshes under a lock the other tabs of the browser share', async () => {
    const held: string[] = [];
    vi.stubGlobal('navigator', {
      locks: {
        request: async (name: string, work: () => Promise<unknown>) => {
          held.push(name);
          const result = await work();
          held.push(`released ${name}`);
          return result;
        },
      },
    });
    const { refresh } = await client();
    answers.push(json(200, PAIR));
    expect(await refresh()).toBe(true);
    expect(held).toEqual(['emporium.refresh', 'released emporium.refresh']);
    expect(sent.map((s) => s.path)).toEqual(['/api/v1/auth/refresh']);
  });

  it('refreshes before the access token expires', async () => {
    const { adopt, session } = await client();
    adopt(PAIR);
    answers.push(json(200, { ...PAIR, access_token: 'access-3' }));
    // At four fifths of 900 s.
    await vi.advanceTimersByTimeAsync(720_000);
    expect(sent.map((s) => s.path)).toEqual(['/api/v1/auth/refresh']);
    expect(session.value?.accessToken).toBe('access-3');
  });

  it('logs out through the route, which clears the cookie, without the access token', async () => {
    const { adopt, logout, session, SIGNED_IN_KEY } = await client();
    adopt(PAIR);
    answers.push(json(200, {}));
    await logout();
    expect(sent).toEqual([
      {
        path: '/api/v1/auth/logout',
        method: 'POST',
        delivery: 'cookie',
        credentials: 'same-origin',
        authorization: null,
        body: {},
      },
    ]);
    expect(session.value).toBeNull();
    expect(local.getItem(SIGNED_IN_KEY)).toBeNull();
  });
});
