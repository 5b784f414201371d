import { useLocation } from 'preact-iso';
import { ErrorMessage, Loading, Money, formValues, useAction, useLoad } from '../components/ui';
import { applyVoucher, loadCart, removeVoucher, setQuantity, type Cart } from '../lib/cart';
import { useSession } from '../lib/session';

export function CartTotals({ cart }: { cart: Cart }) {
  return (
    <dl class="totals">
      {(cart.totals ?? []).map((t, i) => (
        <div key={i}>
          <dt>Subtotal</dt>
          <dd>
            <Money value={t.subtotal} />
          </dd>
          {Number(t.discount?.minor_units ?? 0) > 0 && (
            <>
              <dt>Discount</dt>
              <dd>
                −<Money value={t.discount} />
              </dd>
            </>
          )}
          <dt>Total</dt>
          <dd data-testid="cart-total">
            <Money value={t.total} />
          </dd>
        </div>
      ))}
    </dl>
  );
}

export function CartPage() {
  const viewer = useSession();
  const { route } = useLocation();
  const cart = useLoad(loadCart, [viewer?.userId]);
  const change = useAction();
  const voucher = useAction();

  const update = async (productId: string, quantity: number) => {
    const next = await change.run(() => setQuantity(productId, quantity));
    if (next) cart.set(next);
  };
  const onVoucher = async (event: Event) => {
    const { code } = formValues(event);
    const next = await voucher.run(() => applyVoucher((code ?? '').trim()));
    if (next) cart.set(next);
  };
  const dropVoucher = async () => {
    const next = await voucher.run(() => removeVoucher());
    if (next) cart.set(next);
  };

  if (cart.loading && !cart.data) return <Loading label="Loading your cart…" />;
  const lines = cart.data?.lines ?? [];
  return (
    <section>
      <h1>Your cart</h1>
      <ErrorMessage error={cart.error ?? change.error} />
      {lines.length === 0 ? (
        <p>
          Your cart is empty. <a href="/search">Browse the catalog</a>.
        </p>
      ) : (
        <>
          <table class="cart-lines">
            <caption class="visually-hidden">Items in your cart</caption>
            <thead>
              <tr>
                <th scope="col">Product</th>
                <th scope="col">Price</th>
                <th scope="col">Quantity</th>
                <th scope="col">Total</th>
                <th scope="col">
                  <span class="visually-hidden">Remove</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {lines.map((line) => (
                <tr key={line.product_id} data-testid="cart-line">
                  <td data-label="Product">
                    <a href={`/products/${line.product_id}`}>{line.name}</a>
                    {line.status && line.status !== 'ok' && (
                      <small class="field-error"> ({line.status.replace(/_/g, ' ')})</small>
                    )}
                  </td>
                  <td data-label="Price">
                    <Money value={line.unit_price} />
                  </td>
                  <td data-label="Quantity">
                    <label class="visually-hidden" for={`q-${line.product_id}`}>
                      Quantity of {line.name}
                    </label>
                    <input
                      id={`q-${line.product_id}`}
                      class="qty"
                      type="number"
                      min={0}
                      max={99}
                      value={line.quantity}
                      disabled={change.busy}
                      onChange={(e) =>
                        void update(
                          line.product_id ?? '',
                          Math.max(0, Math.min(99, Number((e.currentTarget as HTMLInputElement).value) || 0)),
                        )
                      }
                    />
                  </td>
                  <td data-label="Total">
                    <Money value={line.line_total} />
                  </td>
                  <td>
                    <button
                      type="button"
                      class="link"
                      disabled={change.busy}
                      onClick={() => void update(line.product_id ?? '', 0)}
                    >
                      Remove<span class="visually-hidden"> {line.name}</span>
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {cart.data && <CartTotals cart={cart.data} />}
          <form class="voucher inline-form" onSubmit={onVoucher}>
            <div class="field">
              <label for="f-code">Voucher code</label>
              <input
                id="f-code"
                name="code"
                maxLength={32}
                aria-invalid={voucher.error?.field('code') ? 'true' : undefined}
              />
            </div>
            <button type="submit" class="secondary" disabled={voucher.busy}>
              Apply
            </button>
          </form>
          <ErrorMessage error={voucher.error} />
          {cart.data?.voucher?.code && (
            <p class={cart.data.voucher.applies ? 'alert alert-ok' : 'alert alert-error'}>
              Voucher {cart.data.voucher.code}:{' '}
              {cart.data.voucher.applies ? (
                <>
                  −<Money value={cart.data.voucher.discount} />
                </>
              ) : (
                cart.data.voucher.message || cart.data.voucher.reason
              )}{' '}
              <button type="button" class="link" onClick={() => void dropVoucher()}>
                Remove voucher
              </button>
            </p>
          )}
          <p>
            <button
              type="button"
              disabled={!cart.data?.checkout_ready}
              onClick={() => route(viewer ? '/checkout' : '/login?next=%2Fcheckout')}
            >
              {viewer ? 'Checkout' : 'Log in to check out'}
            </button>{' '}
            {!viewer && (
              <a href="/register?next=%2Fcheckout">or create an account</a>
            )}
          </p>
        </>
      )}
    </section>
  );
}
