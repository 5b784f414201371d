import { api, call, session, type Schema } from '../api/client';
import { ApiError } from '../api/errors';
import { cartPlan, guestCartGone } from './cartPlan';
import { Store, tabStorage } from './store';

export type Cart = Schema<'cart.v1.Cart'>;

const GUEST_KEY = 'emporium.guest-cart';

/** The number of items in the cart, for the header. */
export const cartCount = new Store<number>(0);

function guestToken(): string | null {
  return tabStorage()?.getItem(GUEST_KEY) ?? null;
}

function setGuestToken(token: string | null): void {
  if (token) tabStorage()?.setItem(GUEST_KEY, token);
  else tabStorage()?.removeItem(GUEST_KEY);
}

function count(cart: Cart | null): number {
  return (cart?.lines ?? []).reduce((sum, line) => sum + (line.quantity ?? 0), 0);
}

function seen(cart: Cart | null): Cart | null {
  cartCount.set(count(cart));
  return cart;
}

/** The cart of whoever is browsing; signing in merges this tab's guest cart into the user's. */
export async function loadCart(): Promise<Cart | null> {
  const token = guestToken();
  const plan = cartPlan(session.value !== null, token);
  if (plan === 'none') return seen(null);
  try {
    const headers = token && plan !== 'user' ? { 'X-Cart-Token': token } : {};
    const cart = await call(() => api.GET('/api/v1/cart', { params: { header: headers } }));
    // Merged into the user's cart: the guest cart is gone.
    if (plan === 'merge') setGuestToken(null);
    return seen(cart);
  } catch (error) {
    if (plan === 'guest' && error instanceof ApiError && guestCartGone(error.status)) {
      setGuestToken(null);
      return seen(null);
    }
    throw error;
  }
}

/** Sets a line's quantity (0 removes it), starting a guest cart first when there is none. */
export async function setQuantity(productId: string, quantity: number): Promise<Cart> {
  const signedIn = session.value !== null;
  if (signedIn && guestToken()) await loadCart();
  let token = signedIn ? null : guestToken();
  if (!signedIn && !token) {
    const created = await call(() => api.POST('/api/v1/carts', { body: {} }));
    token = created.cart_token ?? null;
    setGuestToken(token);
  }
  const header = token ? { 'X-Cart-Token': token } : {};
  const cart = await call(() =>
    api.PUT('/api/v1/cart/items/{product_id}', {
      params: { path: { product_id: productId }, header },
      body: { product_id: productId, quantity },
    }),
  );
  return seen(cart)!;
}

/** Adds to a line's quantity. */
export async function addToCart(productId: string, quantity: number): Promise<Cart> {
  const current = await loadCart().catch(() => null);
  const line = current?.lines?.find((l) => l.product_id === productId);
  return setQuantity(productId, Math.min(99, (line?.quantity ?? 0) + quantity));
}

export async function applyVoucher(code: string): Promise<Cart> {
  const token = session.value ? null : guestToken();
  const header = token ? { 'X-Cart-Token': token } : {};
  return seen(
    await call(() => api.POST('/api/v1/cart/voucher', { params: { header }, body: { code } })),
  )!;
}

export async function removeVoucher(): Promise<Cart> {
  const token = session.value ? null : guestToken();
  const header = token ? { 'X-Cart-Token': token } : {};
  return seen(await call(() => api.DELETE('/api/v1/cart/voucher', { params: { header } })))!;
}
