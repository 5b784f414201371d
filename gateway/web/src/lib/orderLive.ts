import type { Schema } from '../api/client';

type Order = Schema<'order.v1.Order'>;

/** An event of the live order stream: `snapshot` carries an OrderWatch, the others the fields
 * the gateway puts in every event (event, status, sub_order_id, carrier, tracking_number...). */
export interface LiveData {
  status?: string;
  order_status?: string;
  sub_order_id?: string;
  carrier?: string;
  tracking_number?: string;
  sub_orders?: { id?: string; status?: string; carrier?: string; tracking_number?: string }[];
}

/** The order with one live event applied: the page changes without asking the API again. */
export function applyLive(order: Order, event: string, data: LiveData): Order {
  const next: Order = { ...order, sub_orders: [...(order.sub_orders ?? [])] };
  const patchSub = (id: string | undefined, patch: LiveData) => {
    if (!id) return;
    next.sub_orders = next.sub_orders!.map((s) =>
      s.id === id
        ? {
            ...s,
            status: patch.status ?? s.status,
            carrier: patch.carrier || s.carrier,
            tracking_number: patch.tracking_number || s.tracking_number,
          }
        : s,
    );
  };
  if (event === 'snapshot') {
    if (data.status) next.status = data.status;
    for (const sub of data.sub_orders ?? []) patchSub(sub.id, sub);
    return next;
  }
  if (data.sub_order_id) {
    patchSub(data.sub_order_id, data);
    if (data.order_status) next.status = data.order_status;
  } else if (data.status) {
    next.status = data.status;
  }
  return next;
}

/** Whether the customer may still cancel: paid, and nothing shipped (the order service's rule). */
export function canCancel(order: Order): boolean {
  return (
    order.status === 'paid' &&
    !(order.sub_orders ?? []).some((s) => s.status === 'shipped' || s.status === 'delivered')
  );
}
