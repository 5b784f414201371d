import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';
import { ApiError, asApiError, toApiError } from './errors';
import { Store, browserStorage } from '../lib/store';

/** A schema of docs/api/openapi.json by name: `Schema<'order.v1.Order'>`. */
export type Schema<K extends keyof components['schemas']> = components['schemas'][K];

/** The signed-in user, as this tab knows them. The access token lives only here, in memory. */
export interface Session {
  accessToken: string;
  userId: string;
  roles: string[];
  /** When the access token expires (ms since the epoch). */
  expiresAt: number;
}

export const session = new Store<Session | null>(null);

/** Login and refresh answer with the refresh token in an HttpOnly cookie (`emporium_refresh`,
 * Path=/api/v1/auth) that no script can read, instead of the body; refresh and logout take it
 * from there (see README.md, "Tokens"). The app never holds the refresh token. */
const COOKIE_DELIVERY = { header: { 'X-Refresh-Token-Delivery': 'cookie' } } as const;

/** A hint, in this browser's localStorage, that a refresh cookie may exist: only then does the
 * app ask for a new pair at start, so that a guest's visit costs no refresh call. It holds no
 * token, and the cookie decides: a hint without one is forgotten at the first refusal. */
export const SIGNED_IN_KEY = 'emporium.signedIn';

/** The name of the lock that keeps the tabs of this browser from refreshing at once: they share
 * the cookie, and two tabs presenting it together would look like a stolen token to the auth
 * service, which then ends the session. */
const REFRESH_LOCK = 'emporium.refresh';

/** A random UUID (v4). crypto.randomUUID exists only in secure contexts; a shop opened over
 * plain HTTP on a LAN address is not one, getRandomValues works everywhere. */
export function newKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Routes that take no access token: a stale one must not get in their way. */
const NO_BEARER = [
  '/api/v1/auth/login',
  '/api/v1/auth/register',
  '/api/v1/auth/refresh',
  '/api/v1/auth/logout',
];

const auth: Middleware = {
  onRequest({ request }) {
    const current = session.value;
    const path = new URL(request.url).pathname;
    if (current && !NO_BEARER.includes(path) && !request.headers.has('Authorization')) {
      request.headers.set('Authorization', `Bearer ${current.accessToken}`);
    }
    // Every change carries an Idempotency-Key, so a retried request is applied once.
    if (request.method !== 'GET' && !request.headers.has('Idempotency-Key')) {
      request.headers.set('Idempotency-Key', newKey());
    }
    return request;
  },
};

/** The typed client of the public API (same origin as the app). */
export const api = createClient<paths>({ baseUrl: '' });
api.use(auth);

type Result<T> = { data?: T; error?: unknown; response: Response };

/**
 * Runs a call of `api` and answers its data, or throws an ApiError made from the platform's
 * error body. An answer of 401 to a signed-in caller refreshes the session once and retries.
 */
export async function call<T>(request: () => Promise<Result<T>>): Promise<T> {
  let result: Result<T>;
  try {
    result = await request();
    if (result.response.status === 401 && session.value && (await refresh())) {
      result = await request();
    }
  } catch (error) {
    throw asApiError(error);
  }
  if (!result.response.ok) throw toApiError(result.response.status, result.error);
  return result.data as T;
}

// ---- the session ----

let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let refreshing: Promise<boolean> | null = null;

function toNumber(value: string | number | undefined, fallback: number): number {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : fallback;
}

/** Takes a token pair from login or refresh: the access token into memory (the refresh token
 * is in the cookie, the body's is empty), and a refresh scheduled before the access token
 * expires. */
export function adopt(pair: Schema<'auth.v1.TokenPair'>): void {
  const expiresIn = toNumber(pair.expires_in, 300);
  session.set({
    accessToken: pair.access_token ?? '',
    userId: pair.user_id ?? '',
    roles: pair.roles ?? [],
    expiresAt: Date.now() + expiresIn * 1000,
  });
  browserStorage()?.setItem(SIGNED_IN_KEY, '1');
  clearTimeout(refreshTimer);
  // At four fifths of the lifetime, and never sooner than in 5 s.
  refreshTimer = setTimeout(() => void refresh(), Math.max(5, expiresIn * 0.8) * 1000);
}

function forget(): void {
  clearTimeout(refreshTimer);
  browserStorage()?.removeItem(SIGNED_IN_KEY);
  session.set(null);
}

/** Runs `work` while no other tab of this browser runs it. Web Locks exist in secure contexts
 * (HTTPS, localhost); a shop opened over plain HTTP elsewhere goes without. */
async function oneTabAtATime<T>(work: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== 'undefined' && 'locks' in navigator ? navigator.locks : null;
  if (!locks) return work();
  let result!: T;
  await locks.request(REFRESH_LOCK, async () => {
    result = await work();
  });
  return result;
}

/** Exchanges the refresh cookie for a new pair and a new cookie (once at a time, across tabs
 * too: the old token stops working, and presenting it twice would end the session). False
 * when the session is over. */
export function refresh(): Promise<boolean> {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      return await oneTabAtATime(async () => {
        // No token in the body: the browser sends the cookie.
        const { data, response } = await api.POST('/api/v1/auth/refresh', {
          body: {},
          params: COOKIE_DELIVERY,
          credentials: 'same-origin',
        });
        if (response.ok && data) {
          adopt(data);
          return true;
        }
        if (response.status === 400 || response.status === 401) forget();
        return false;
      });
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** The Authorization header for a request made outside `api` (the live order stream). */
export async function authorization(): Promise<string | null> {
  const current = session.value;
  if (current && current.expiresAt - Date.now() < 10_000) await refresh();
  const fresh = session.value;
  return fresh ? `Bearer ${fresh.accessToken}` : null;
}

/** Restores the session at start (a reload, a new tab) from the refresh cookie, when this
 * browser signed in. */
export async function restoreSession(): Promise<void> {
  if (browserStorage()?.getItem(SIGNED_IN_KEY)) await refresh();
}

export async function login(email: string, password: string): Promise<void> {
  const pair = await call(() =>
    api.POST('/api/v1/auth/login', {
      body: { email, password },
      params: COOKIE_DELIVERY,
      credentials: 'same-origin',
    }),
  );
  adopt(pair);
}

/** Ends the session through the API, which revokes the refresh token and clears its cookie. */
export async function logout(): Promise<void> {
  try {
    await api.POST('/api/v1/auth/logout', {
      body: {},
      params: COOKIE_DELIVERY,
      credentials: 'same-origin',
    });
  } catch {
    // Logged out here either way; the access token expires on its own.
  }
  forget();
}

export function hasRole(role: string): boolean {
  return session.value?.roles.includes(role) ?? false;
}

export { ApiError };
