import { useEffect, useState } from 'preact/hooks';
import { api, authorization, call, type Schema } from '../api/client';
import { DateTime, ErrorMessage, Loading, Money, Notice, Status, shortId, formValues, useAction, useLoad } from '../components/ui';
import { applyLive, canCancel, type LiveData } from '../lib/orderLive';
import { followStream } from '../lib/sse';
import { failureText } from './Checkout';

type Order = Schema<'order.v1.Order'>;

export function OrdersPage() {
  const orders = useLoad(() => call(() => api.GET('/api/v1/orders', { params: { query: { page_size: 50 } } })), []);
  return (
    <section>
      <h1>Your orders</h1>
      {orders.loading && <Loading />}
      <ErrorMessage error={orders.error} />
      {orders.data && (orders.data.orders ?? []).length === 0 && (
        <p>
          No orders yet. <a href="/search">Start shopping</a>.
        </p>
      )}
      <ul class="order-list">
        {(orders.data?.orders ?? []).map((o) => (
          <li key={o.id} class="card">
            <a href={`/orders/${o.id}`}>Order {shortId(o.id)}</a> · <DateTime value={o.created_at} /> ·{' '}
            <Status value={o.status} /> · <Money value={o.total} />
          </li>
        ))}
      </ul>
    </section>
  );
}

function useLiveOrder(id: string, initial: Order | undefined, reload: () => void) {
  const [order, setOrder] = useState<Order | undefined>(initial);
  const [live, setLive] = useState<'connecting' | 'live' | 'reconnecting' | 'off'>('connecting');
  useEffect(() => setOrder(initial), [initial]);
  useEffect(() => {
    if (!initial) return;
    const controller = new AbortController();
    void followStream(`/api/v1/orders/${encodeURIComponent(id)}/events`, {
      authorization,
      signal: controller.signal,
      onState: (up) => setLive(up ? 'live' : 'reconnecting'),
      onRefused: () => setLive('off'),
      onEvent: (event) => {
        let data: LiveData;
        try {
          data = JSON.parse(event.data) as LiveData;
        } catch {
          return;
        }
        setOrder((current) => (current ? applyLive(current, event.event, data) : current));
        // The history and totals come with the order itself.
        if (event.event !== 'snapshot') reload();
      },
    });
    return () => controller.abort();
    // Follow once per order; `initial` only gates the start.
  }, [id, initial !== undefined]);
  return { order, live };
}

export function OrderPage({ id }: { id: string }) {
  const loaded = useLoad(() => call(() => api.GET('/api/v1/orders/{id}', { params: { path: { id } } })), [id]);
  const { order, live } = useLiveOrder(id, loaded.data, loaded.reload);
  const cancel = useAction();
  const [cancelled, setCancelled] = useState(false);

  if (loaded.loading && !order) return <Loading label="Loading the order…" />;
  if (!order) return <ErrorMessage error={loaded.error} />;

  const onCancel = async (event: Event) => {
    const { reason } = formValues(event);
    const answer = await cancel.run(() =>
      call(() => api.POST('/api/v1/orders/{id}/cancel', { params: { path: { id } }, body: { id, reason: reason ?? '' } })),
    );
    if (answer) {
      setCancelled(true);
      loaded.reload();
    }
  };

  return (
    <section class="order">
      <h1>Order {shortId(order.id)}</h1>
      <p class="live" role="status" aria-live="polite">
        <span class={`dot dot-${live}`} aria-hidden="true" />
        {live === 'live' ? 'Updates live' : live === 'reconnecting' ? 'Reconnecting…' : live === 'off' ? 'Not following live' : 'Connecting…'}
      </p>
      <p class="order-status" aria-live="polite">
        Status: <strong data-testid="order-status">{(order.status ?? '').replace(/_/g, ' ')}</strong>
      </p>
      {order.status === 'failed' && <div class="alert alert-error">{failureText(order)}</div>}
      {cancelled && <Notice>Your order is being cancelled; the payment is refunded or released.</Notice>}
      <dl class="totals">
        <dt>Subtotal</dt>
        <dd>
          <Money value={order.subtotal} />
        </dd>
        {Number(order.discount?.minor_units ?? 0) > 0 && (
          <>
            <dt>Discount</dt>
            <dd>
              −<Money value={order.discount} />
            </dd>
          </>
        )}
        <dt>Shipping</dt>
        <dd>
          <Money value={order.shipping} />
        </dd>
        <dt>Tax</dt>
        <dd>
          <Money value={order.tax} />
        </dd>
        <dt>Total</dt>
        <dd>
          <Money value={order.total} />
        </dd>
      </dl>
      <h2>Shipments</h2>
      <ul class="sub-orders">
        {(order.sub_orders ?? []).map((s) => (
          <li key={s.id} class="card" data-testid="sub-order">
            <p>
              {s.shop_name && (
                <>
                  <strong data-testid="sub-order-shop">{s.shop_name}</strong> ·{' '}
                </>
              )}
              <Status value={s.status} />{' '}
              {s.carrier && s.tracking_number && (
                <span data-testid="tracking">
                  {s.carrier} tracking number <strong>{s.tracking_number}</strong>
                </span>
              )}
            </p>
            <ul>
              {(s.lines ?? []).map((l) => (
                <li key={l.product_id}>
                  {l.quantity} × <a href={`/products/${l.product_id}`}>{l.name}</a> — <Money value={l.line_total} />
                </li>
              ))}
            </ul>
          </li>
        ))}
      </ul>
      {order.shipping_address && (
        <>
          <h2>Shipping to</h2>
          <address>
            {order.shipping_address.recipient_name}
            <br />
            {order.shipping_address.line1}
            {order.shipping_address.line2 && (
              <>
                <br />
                {order.shipping_address.line2}
              </>
            )}
            <br />
            {order.shipping_address.postal_code} {order.shipping_address.city} {order.shipping_address.country_code}
          </address>
        </>
      )}
      <h2>History</h2>
      <ol class="history">
        {(order.history ?? []).map((h, i) => (
          <li key={i}>
            <DateTime value={h.at} /> — {(h.status ?? '').replace(/_/g, ' ')}
            {h.reason && `: ${h.reason}`}
          </li>
        ))}
      </ol>
      {canCancel(order) && !cancelled && (
        <form class="card cancel" onSubmit={onCancel} aria-label="Cancel the order">
          <h2>Cancel the order</h2>
          <div class="field">
            <label for="f-reason">Reason (optional)</label>
            <input id="f-reason" name="reason" maxLength={500} />
          </div>
          <ErrorMessage error={cancel.error} />
          <button type="submit" class="danger" disabled={cancel.busy}>
            {cancel.busy ? 'Cancelling…' : 'Cancel order'}
          </button>
        </form>
      )}
    </section>
  );
}
