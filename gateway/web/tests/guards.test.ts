import { describe, expect, it } from 'vitest';
import { guard, safeNext } from '../src/lib/guards';

const guest = { signedIn: false, roles: [] };
const customer = { signedIn: true, roles: ['customer'] };
const seller = { signedIn: true, roles: ['customer', 'seller'] };
const admin = { signedIn: true, roles: ['admin'] };

describe('route guards', () => {
  it('lets anyone browse', () => {
    expect(guard('anyone', guest, '/')).toEqual({ kind: 'allow' });
  });

  it('sends a guest to log in, then back', () => {
    expect(guard('signed-in', guest, '/orders/1?x=2')).toEqual({
      kind: 'login',
      to: '/login?next=%2Forders%2F1%3Fx%3D2',
    });
    expect(guard('admin', guest, '/admin')).toMatchObject({ kind: 'login' });
  });

  it('keeps the seller console for sellers and admins', () => {
    expect(guard('seller', customer, '/seller')).toEqual({ kind: 'forbidden' });
    expect(guard('seller', seller, '/seller')).toEqual({ kind: 'allow' });
    expect(guard('seller', admin, '/seller')).toEqual({ kind: 'allow' });
  });

  it('keeps the operations console for admins', () => {
    expect(guard('admin', seller, '/admin')).toEqual({ kind: 'forbidden' });
    expect(guard('admin', admin, '/admin')).toEqual({ kind: 'allow' });
  });

  it('sends a signed-in visitor away from the login page', () => {
    expect(guard('signed-out', customer, '/login')).toEqual({ kind: 'redirect', to: '/orders' });
    expect(guard('signed-out', guest, '/login')).toEqual({ kind: 'allow' });
  });

  it('follows ?next= only to a path of this site', () => {
    expect(safeNext('/checkout')).toBe('/checkout');
    expect(safeNext('https://evil.example/')).toBe('/');
    expect(safeNext('//evil.example/')).toBe('/');
    expect(safeNext('/\\evil.example')).toBe('/');
    expect(safeNext(undefined, '/orders')).toBe('/orders');
  });
});
