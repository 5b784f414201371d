import { useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { api, call, newKey, type Schema } from '../api/client';
import { ApiError } from '../api/errors';
import { AddressForm } from '../components/AddressForm';
import { ErrorMessage, Field, Loading, Money, formValues, useAction, useLoad } from '../components/ui';
import { loadCart } from '../lib/cart';
import { SHIPPING_METHODS, payable, priceChanged, problemText, quoteRequest, type Quote } from '../lib/quote';
import { CartTotals } from './Cart';

type Order = Schema<'order.v1.Order'>;
type MoneyValue = Schema<'common.v1.Money'>;

/** Subtotal, discount, shipping, tax and total, as a quote has them for a shop or in all. */
function QuoteTotals({ figures, testId }: { figures: Quote | Schema<'order.v1.ShopQuote'>; testId?: string }) {
  const row = (label: string, value: MoneyValue | undefined, minus = false) => (
    <>
      <dt>{label}</dt>
      <dd>
        {minus && '−'}
        <Money value={value} />
      </dd>
    </>
  );
  return (
    <dl class="totals">
      <div>
        {row('Subtotal', figures.subtotal)}
        {Number(figures.discount?.minor_units ?? 0) > 0 && row('Discount', figures.discount, true)}
        {row('Shipping', figures.shipping)}
        {row('Tax', figures.tax)}
        <dt>Total</dt>
        <dd data-testid={testId}>
          <Money value={figures.total} />
        </dd>
      </div>
    </dl>
  );
}

/** The payment service's test cards (apps/payment/src/provider.rs, TEST_CARDS). */
export const TEST_CARDS = [
  { number: '4242 4242 4242 4242', outcome: 'approved' },
  { number: '4000 0000 0000 0002', outcome: 'declined (card_declined)' },
  { number: '4000 0000 0000 9995', outcome: 'declined (insufficient_funds)' },
  { number: '4000 0000 0000 0119', outcome: 'fails with a processing error' },
];

/** Why an order failed, in words for the customer. */
export function failureText(order: Order): string {
  const f = order.failure;
  if (!f) return 'The order could not be completed.';
  const reason = f.message || f.payment_failure_code || f.code || 'unknown reason';
  return `Payment failed: ${reason}${f.payment_failure_code && f.message ? ` (${f.payment_failure_code})` : ''}`;
}

export function CheckoutPage() {
  const { route } = useLocation();
  const cart = useLoad(loadCart, []);
  const addresses = useLoad(
    () => call(() => api.GET('/api/v1/addresses')).then((r) => r.addresses ?? []),
    [],
  );
  const [addressId, setAddressId] = useState<string>('');
  const [shippingMethod, setShippingMethod] = useState<string>('standard');
  // Empty: the voucher applied to the cart, if any.
  const [voucherCode, setVoucherCode] = useState<string>('');
  const [cardNumber, setCardNumber] = useState('');
  const [failed, setFailed] = useState<string | null>(null);
  const [changed, setChanged] = useState(false);
  const pay = useAction();
  const list = addresses.data ?? [];
  const chosen = addressId || list.find((a) => a.is_default)?.id || list[0]?.id || '';
  // The figures the order will have, asked again whenever the address, method or voucher change.
  const quote = useLoad(() => {
    const body = quoteRequest({ addressId: chosen, shippingMethod, voucherCode });
    return body ? call(() => api.POST('/api/v1/checkout/quote', { body })) : Promise.resolve(null);
  }, [chosen, shippingMethod, voucherCode]);

  // Only the first load replaces the page: a reload (a new address) keeps what was typed.
  if ((cart.loading && !cart.data) || (addresses.loading && !addresses.data)) {
    return <Loading label="Preparing checkout…" />;
  }
  if (!cart.data || (cart.data.lines ?? []).length === 0) {
    return (
      <section>
        <h1>Checkout</h1>
        <ErrorMessage error={cart.error} />
        <p>
          Your cart is empty. <a href="/search">Browse the catalog</a>.
        </p>
      </section>
    );
  }

  const names: Record<string, string> = {};
  for (const l of cart.data.lines ?? []) if (l.product_id) names[l.product_id] = l.name ?? '';
  const shown = quote.data ?? null;

  const submit = async (event: Event) => {
    const v = formValues(event);
    setFailed(null);
    setChanged(false);
    const [month, year] = (v.expiry ?? '').split('/').map((s) => Number(s.trim()));
    const order = await pay.run(async () => {
      if (!chosen) throw new ApiError(400, 'invalid_argument', 'Choose or add a shipping address.');
      const method = await call(() =>
        api.POST('/api/v1/payment-methods', {
          body: {
            card_number: v.card_number ?? '',
            cvc: v.cvc ?? '',
            exp_month: month || undefined,
            exp_year: year ? (year < 100 ? 2000 + year : year) : undefined,
          },
        }),
      );
      const key = newKey();
      const answer = await call(() =>
        api.POST('/api/v1/checkout', {
          params: { header: { 'Idempotency-Key': key } },
          body: {
            idempotency_key: key,
            shipping_address_id: chosen,
            shipping_method: shippingMethod,
            ...(voucherCode ? { voucher_code: voucherCode } : {}),
            payment_method_id: method.id ?? '',
            // The total shown: a different one fails the order with price_changed, uncharged.
            ...(shown?.total ? { expected_total: shown.total } : {}),
          },
        }),
      );
      return answer.order;
    });
    if (!order) return;
    if (priceChanged(order)) {
      // Nothing was charged: show the new figures and let the customer confirm them.
      setChanged(true);
      quote.reload();
      void cart.reload();
      return;
    }
    if (order.status === 'failed') {
      // The cart is left as it was: the customer can try another card.
      setFailed(failureText(order));
      void cart.reload();
      return;
    }
    void loadCart().catch(() => null);
    route(`/orders/${order.id}`);
  };

  return (
    <section class="checkout">
      <h1>Checkout</h1>
      <div class="columns">
        <div>
          <h2>Shipping address</h2>
          <ErrorMessage error={addresses.error} />
          {list.length > 0 && (
            <fieldset class="choices">
              <legend class="visually-hidden">Ship to</legend>
              {list.map((a) => (
                <label key={a.id} class="choice">
                  <input
                    type="radio"
                    name="address"
                    value={a.id}
                    checked={chosen === a.id}
                    onChange={() => setAddressId(a.id ?? '')}
                  />
                  <span>
                    {a.recipient_name}, {a.line1}, {a.postal_code} {a.city}, {a.country_code}
                  </span>
                </label>
              ))}
            </fieldset>
          )}
          <details open={list.length === 0}>
            <summary>Add an address</summary>
            <AddressForm
              onSaved={(a) => {
                setAddressId(a.id ?? '');
                addresses.reload();
              }}
            />
          </details>
        </div>
        <div>
          <h2>Shipping method</h2>
          <fieldset class="choices">
            <legend class="visually-hidden">Shipping method</legend>
            {SHIPPING_METHODS.map((m) => (
              <label key={m.id} class="choice">
                <input
                  type="radio"
                  name="shipping_method"
                  value={m.id}
                  checked={shippingMethod === m.id}
                  onChange={() => setShippingMethod(m.id)}
                />
                <span>{m.label}</span>
              </label>
            ))}
          </fieldset>
          <form
            class="voucher inline-form"
            aria-label="Voucher"
            onSubmit={(event) => setVoucherCode((formValues(event).code ?? '').trim())}
          >
            <div class="field">
              <label for="f-checkout-code">Voucher code</label>
              <input
                id="f-checkout-code"
                name="code"
                maxLength={32}
                placeholder={cart.data.voucher?.code || undefined}
                aria-invalid={quote.error?.field('voucher_code') ? 'true' : undefined}
              />
            </div>
            <button type="submit" class="secondary">
              Use voucher
            </button>
          </form>
          <h2>Order summary</h2>
          {shown && (shown.shops ?? []).length > 0 ? (
            <div data-testid="quote">
              {(shown.shops ?? []).map((s) => (
                <div key={s.shop_id} class="card" data-testid="quote-shop">
                  <h3>{s.shop_name || 'Shop'}</h3>
                  <ul class="summary-lines">
                    {(s.lines ?? []).map((l) => (
                      <li key={l.product_id}>
                        {l.quantity} × {l.name} — <Money value={l.line_total} />
                      </li>
                    ))}
                  </ul>
                  <QuoteTotals figures={s} />
                </div>
              ))}
              {(shown.shops ?? []).length > 1 && <h3>All shops</h3>}
              <QuoteTotals figures={shown} testId="quote-total" />
              {shown.voucher_code && <p class="hint">Voucher {shown.voucher_code} applied.</p>}
            </div>
          ) : (
            <>
              <ul class="summary-lines">
                {(cart.data.lines ?? []).map((l) => (
                  <li key={l.product_id}>
                    {l.quantity} × {l.name}
                  </li>
                ))}
              </ul>
              <CartTotals cart={cart.data} />
              <p class="hint">
                {chosen ? (quote.loading ? 'Working out shipping and tax…' : '') : 'Choose an address to see shipping and tax.'}
              </p>
            </>
          )}
          <ErrorMessage error={quote.error} />
          {shown?.problem && (
            <div class="alert alert-error" role="alert" data-testid="quote-problem">
              {problemText(shown.problem, names)}
            </div>
          )}
          {changed && (
            <div class="alert alert-error" role="alert" data-testid="price-changed">
              The prices changed since the total was shown, and nothing was charged. Check the new figures above and
              place the order again to confirm them.
            </div>
          )}
          <h2>Payment</h2>
          <div class="test-cards" aria-labelledby="test-cards-title">
            <h3 id="test-cards-title">Test cards</h3>
            <p class="hint">This shop runs in test mode: use any future expiry and any CVC.</p>
            <ul>
              {TEST_CARDS.map((c) => (
                <li key={c.number}>
                  <button type="button" class="link" onClick={() => setCardNumber(c.number)}>
                    <code>{c.number}</code>
                  </button>{' '}
                  {c.outcome}
                </li>
              ))}
            </ul>
          </div>
          <form onSubmit={submit} aria-label="Payment">
            <Field
              label="Card number"
              name="card_number"
              required
              inputMode="numeric"
              autocomplete="cc-number"
              maxLength={32}
              value={cardNumber}
              onInput={(e) => setCardNumber((e.currentTarget as HTMLInputElement).value)}
              error={pay.error}
            />
            <div class="row">
              <Field
                label="Expiry (MM/YY)"
                name="expiry"
                required
                autocomplete="cc-exp"
                placeholder="12/30"
                maxLength={7}
                apiField="exp_year"
                error={pay.error}
              />
              <Field label="CVC" name="cvc" required inputMode="numeric" autocomplete="cc-csc" maxLength={4} error={pay.error} />
            </div>
            <ErrorMessage error={pay.error} />
            {failed && (
              <div class="alert alert-error" role="alert" data-testid="payment-failed">
                {failed}
              </div>
            )}
            <button type="submit" disabled={pay.busy || !cart.data.checkout_ready || quote.loading || !payable(shown)}>
              {pay.busy ? 'Placing your order…' : changed ? 'Confirm and place order' : 'Place order'}
            </button>
          </form>
        </div>
      </div>
    </section>
  );
}
