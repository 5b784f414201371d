import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';
import { ApiError, asApiError, toApiError } from './errors';
import { Store, tabStorage } from '../lib/store';

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

/** The refresh token is kept in this tab's sessionStorage (see README.md, "Tokens"). */
const REFRESH_KEY = 'emporium.refresh';

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
const NO_BEARER = ['/api/v1/auth/login', '/api/v1/auth/register', '/api/v1/auth/refresh'];

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

/** Takes a token pair from login or refresh: the access token into memory, the refresh token
 * into this tab's storage, and a refresh scheduled before the access token expires. */
export function adopt(pair: Schema<'auth.v1.TokenPair'>): void {
  const expiresIn = toNumber(pair.expires_in, 300);
  session.set({
    accessToken: pair.access_token ?? '',
    userId: pair.user_id ?? '',
    roles: pair.roles ?? [],
    expiresAt: Date.now() + expiresIn * 1000,
  });
  if (pair.refresh_token) tabStorage()?.setItem(REFRESH_KEY, pair.refresh_token);
  clearTimeout(refreshTimer);
  // At four fifths of the lifetime, and never sooner than in 5 s.
  refreshTimer = setTimeout(() => void refresh(), Math.max(5, expiresIn * 0.8) * 1000);
}

function forget(): void {
  clearTimeout(refreshTimer);
  tabStorage()?.removeItem(REFRESH_KEY);
  session.set(null);
}

/** Exchanges the refresh token for a new pair (once at a time: the old token stops working,
 * and presenting it twice would end the session). False when the session is over. */
export function refresh(): Promise<boolean> {
  if (refreshing) return refreshing;
  const token = tabStorage()?.getItem(REFRESH_KEY);
  if (!token) return Promise.resolve(false);
  refreshing = (async () => {
    try {
      const { data, response } = await api.POST('/api/v1/auth/refresh', {
        body: { refresh_token: token },
      });
      if (response.ok && data) {
        adopt(data);
        return true;
      }
      if (response.status === 400 || response.status === 401) forget();
      return false;
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

/** Restores the session of this tab after a reload, from its refresh token. */
export async function restoreSession(): Promise<void> {
  if (tabStorage()?.getItem(REFRESH_KEY)) await refresh();
}

export async function login(email: string, password: string): Promise<void> {
  const pair = await call(() => api.POST('/api/v1/auth/login', { body: { email, password } }));
  adopt(pair);
}

export async function logout(): Promise<void> {
  const token = tabStorage()?.getItem(REFRESH_KEY);
  if (token) {
    try {
      await api.POST('/api/v1/auth/logout', { body: { refresh_token: token } });
    } catch {
      // Logged out here either way; the access token expires on its own.
    }
  }
  forget();
}

export function hasRole(role: string): boolean {
  return session.value?.roles.includes(role) ?? false;
}

export { ApiError };
