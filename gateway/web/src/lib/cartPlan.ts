/** How to reach the cart, given who is browsing and whether a guest cart exists in this tab. */
export type CartPlan =
  /** Signed in with a guest cart: read the user's cart with the guest token once (the cart
   * service merges the guest lines into it), then forget the token. */
  | 'merge'
  /** Signed in, no guest cart: the user's cart. */
  | 'user'
  /** A guest with a cart: that cart, by its token. */
  | 'guest'
  /** A guest without a cart yet: nothing to read; the first line added starts one. */
  | 'none';

export function cartPlan(signedIn: boolean, guestToken: string | null): CartPlan {
  if (signedIn) return guestToken ? 'merge' : 'user';
  return guestToken ? 'guest' : 'none';
}

/** Whether an error code means the guest cart token no longer names a cart (expired). */
export function guestCartGone(status: number): boolean {
  return status === 404 || status === 401;
}
