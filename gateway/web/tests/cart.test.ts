import { describe, expect, it } from 'vitest';
import { cartPlan, guestCartGone } from '../src/lib/cartPlan';
import { applyLive, canCancel } from '../src/lib/orderLive';

describe('cart merge decision', () => {
  it('merges a guest cart into the user’s once signed in', () => {
    expect(cartPlan(true, 'guest-token')).toBe('merge');
  });
  it('reads the user’s own cart when there is no guest cart', () => {
    expect(cartPlan(true, null)).toBe('user');
  });
  it('reads a guest’s cart by its token', () => {
    expect(cartPlan(false, 'guest-token')).toBe('guest');
  });
  it('starts no cart before a guest adds something', () => {
    expect(cartPlan(false, null)).toBe('none');
  });
  it('forgets a guest token the cart service no longer knows', () => {
    expect(guestCartGone(404)).toBe(true);
    expect(guestCartGone(503)).toBe(false);
  });
});

describe('live order', () => {
  const order = {
    id: 'o1',
    status: 'paid',
    sub_orders: [
      { id: 's1', status: 'paid' },
      { id: 's2', status: 'paid' },
    ],
  };

  it('applies a shipped sub-order with its carrier and tracking number', () => {
    const next = applyLive(order, 'suborder.shipped', {
      sub_order_id: 's1',
      status: 'shipped',
      order_status: 'partially_shipped',
      carrier: 'UPS',
      tracking_number: '1Z999',
    });
    expect(next.status).toBe('partially_shipped');
    expect(next.sub_orders?.[0]).toMatchObject({ status: 'shipped', carrier: 'UPS', tracking_number: '1Z999' });
    expect(next.sub_orders?.[1]?.status).toBe('paid');
    expect(order.sub_orders[0]?.status).toBe('paid');
  });

  it('applies an order event and a snapshot', () => {
    expect(applyLive({ ...order, status: 'pending' }, 'order.paid', { status: 'paid' }).status).toBe('paid');
    const snap = applyLive(order, 'snapshot', { status: 'shipped', sub_orders: [{ id: 's2', status: 'shipped' }] });
    expect(snap.status).toBe('shipped');
    expect(snap.sub_orders?.[1]?.status).toBe('shipped');
  });

  it('offers to cancel only a paid order with nothing shipped', () => {
    expect(canCancel(order)).toBe(true);
    expect(canCancel({ ...order, status: 'pending' })).toBe(false);
    expect(canCancel(applyLive(order, 'suborder.shipped', { sub_order_id: 's1', status: 'shipped' }))).toBe(false);
  });
});
