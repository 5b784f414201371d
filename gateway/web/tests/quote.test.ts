import { describe, expect, it } from 'vitest';
import { payable, priceChanged, problemText, quoteRequest, type Quote } from '../src/lib/quote';

const usd = (minor_units: number) => ({ currency: 'USD', minor_units });

describe('checkout quote', () => {
  it('asks for a quote only once there is an address', () => {
    expect(quoteRequest({ addressId: '', shippingMethod: 'standard', voucherCode: '' })).toBeNull();
    expect(quoteRequest({ addressId: 'a-1', shippingMethod: 'express', voucherCode: '  SAVE5 ' })).toEqual({
      shipping_address_id: 'a-1',
      shipping_method: 'express',
      voucher_code: 'SAVE5',
    });
    // No code: the cart's voucher applies, so none is sent.
    expect(quoteRequest({ addressId: 'a-1', shippingMethod: '', voucherCode: ' ' })).toEqual({
      shipping_address_id: 'a-1',
      shipping_method: 'standard',
    });
  });

  it('lets the customer pay only a quote with a total and no problem', () => {
    const quote: Quote = { currency: 'USD', total: usd(3000), shops: [] };
    expect(payable(quote)).toBe(true);
    expect(payable({ ...quote, problem: { code: 'out_of_stock', product_ids: ['p-1'] } })).toBe(false);
    expect(payable({ problem: { code: 'empty_cart' } })).toBe(false);
    expect(payable(null)).toBe(false);
  });

  it('says in words why a cart cannot be checked out, naming the products', () => {
    const names = { 'p-1': 'Desk lamp', 'p-2': 'Green tea' };
    expect(problemText({ code: 'out_of_stock', product_ids: ['p-1', 'p-2'] }, names)).toBe(
      'Not enough in stock for Desk lamp, Green tea: change the quantities in your cart.',
    );
    expect(problemText({ code: 'cart_not_ready', product_ids: ['p-2'] }, names)).toBe(
      'Green tea can no longer be bought: remove it from your cart.',
    );
    expect(problemText({ code: 'empty_cart' })).toBe('Your cart is empty.');
    expect(problemText({ code: 'voucher_unavailable', message: 'voucher "X": expired' })).toBe(
      'This voucher cannot be used for this order.',
    );
    expect(problemText({ code: 'something_new', message: 'Try later.' })).toBe('Try later.');
  });

  it('recognises an order refused because its total changed', () => {
    expect(priceChanged({ status: 'failed', failure: { code: 'price_changed' } })).toBe(true);
    expect(priceChanged({ status: 'failed', failure: { code: 'payment_declined' } })).toBe(false);
    expect(priceChanged({ status: 'paid' })).toBe(false);
    expect(priceChanged(undefined)).toBe(false);
  });
});
