/** Who may open a page. */
export type Access = 'anyone' | 'signed-in' | 'seller' | 'admin' | 'signed-out';

export interface Viewer {
  signedIn: boolean;
  roles: readonly string[];
}

export type GuardResult =
  | { kind: 'allow' }
  | { kind: 'login'; to: string }
  | { kind: 'forbidden' }
  | { kind: 'redirect'; to: string };

/** Whether a viewer may open a page at `path` that needs `access`, and where to go if not. */
export function guard(access: Access, viewer: Viewer, path: string): GuardResult {
  switch (access) {
    case 'anyone':
      return { kind: 'allow' };
    case 'signed-out':
      // The login and register pages send a signed-in visitor on to their account.
      return viewer.signedIn ? { kind: 'redirect', to: '/orders' } : { kind: 'allow' };
    case 'signed-in':
    case 'seller':
    case 'admin': {
      if (!viewer.signedIn) return { kind: 'login', to: `/login?next=${encodeURIComponent(path)}` };
      if (access === 'signed-in') return { kind: 'allow' };
      // Admins may open the seller console too (they may act for any shop).
      const ok = viewer.roles.includes('admin') || viewer.roles.includes(access);
      return ok ? { kind: 'allow' } : { kind: 'forbidden' };
    }
  }
}

/** Where to go after logging in: a local path from ?next=, never another site. */
export function safeNext(next: string | null | undefined, fallback = '/'): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.includes('\\')) return fallback;
  return next;
}
