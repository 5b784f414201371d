import type { Schema } from '../api/client';

/** What a checkout of the cart would charge now (POST /api/v1/checkout/quote). */
export type Quote = Schema<'order.v1.CheckoutQuote'>;
type Failure = Schema<'order.v1.Failure'>;
type QuoteRequest = Schema<'order.v1.QuoteCheckoutRequest'>;

/** The shipping methods a shop offers by default ("standard" when none is chosen). */
export const SHIPPING_METHODS = [
  { id: 'standard', label: 'Standard' },
  { id: 'express', label: 'Express' },
] as const;

/** What the customer chose on the checkout page. */
export interface CheckoutChoice {
  addressId: string;
  shippingMethod: string;
  /** Empty: the voucher applied to the cart, if any. */
  voucherCode: string;
}

/** The body of a quote request; null until there is an address to quote for. */
export function quoteRequest(choice: CheckoutChoice): QuoteRequest | null {
  if (!choice.addressId) return null;
  const voucher = choice.voucherCode.trim();
  return {
    shipping_address_id: choice.addressId,
    shipping_method: choice.shippingMethod || 'standard',
    ...(voucher ? { voucher_code: voucher } : {}),
  };
}

/** Whether the quote can be paid: it has a total and nothing stands in the way. */
export function payable(quote: Quote | null | undefined): boolean {
  return !!quote && !quote.problem && !!quote.total?.currency;
}

/** Why the cart cannot be checked out, in words for the customer; `names` maps product ids to names. */
export function problemText(problem: Failure, names: Record<string, string> = {}): string {
  const products = (problem.product_ids ?? []).map((id) => names[id] ?? 'a product').join(', ');
  switch (problem.code) {
    case 'empty_cart':
      return 'Your cart is empty.';
    case 'out_of_stock':
      return `Not enough in stock for ${products || 'some products'}: change the quantities in your cart.`;
    case 'cart_not_ready':
      return products
        ? `${products} can no longer be bought: remove it from your cart.`
        : 'Some products in your cart can no longer be bought together: check your cart.';
    case 'voucher_unavailable':
      return 'This voucher cannot be used for this order.';
    case 'shipping_unavailable':
      return 'This shipping method is not offered for this order: choose another.';
    default:
      return problem.message || 'This cart cannot be checked out right now.';
  }
}

/** Whether the order failed because its total was no longer the one shown. */
export function priceChanged(order: Schema<'order.v1.Order'> | undefined): boolean {
  return order?.status === 'failed' && order.failure?.code === 'price_changed';
}
