import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { expect, type APIRequestContext, type BrowserContext, type Page } from '@playwright/test';

/** What the harness seeded (gateway/web/e2e/SEED.md). */
export interface Seed {
  seller: { email: string; password: string };
  admin: { email: string; password: string };
  shops: {
    id: string;
    name: string;
    products: { id: string; name: string; price_minor: number; currency: string }[];
  }[];
  card: string;
  declined_card: string;
  /** An event the user service's consumer gave up on: its dead letter is listed. */
  dead_letter: { consumer: string; event_id: string; event_type: string };
}

export function seed(): Seed {
  const path = process.env.STOREFRONT_SEED;
  if (!path) throw new Error('STOREFRONT_SEED names the seed file the harness wrote');
  return JSON.parse(readFileSync(path, 'utf8')) as Seed;
}

export function output(): string {
  return process.env.STOREFRONT_OUTPUT ?? 'output';
}

export const PASSWORD = 'correct-horse-battery-staple';

/** A new customer's email, unique per run. */
export function newEmail(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}@storefront.test`;
}

/** A product's card in the search results, by its exact name. */
export async function openProduct(page: Page, query: string, name: string): Promise<void> {
  await page.goto(`/search?q=${encodeURIComponent(query)}`);
  await page.getByRole('link', { name, exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name })).toBeVisible();
  await expect(page.getByTestId('availability')).toContainText('In stock');
}

export async function addToCart(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Add to cart' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Added to your cart' })).toBeVisible();
}

export async function logIn(page: Page, email: string, password: string): Promise<void> {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).not.toHaveURL(/\/login/);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeAttached();
}

/** Fills the address form of the checkout page and saves it. */
export async function fillAddress(page: Page): Promise<void> {
  await page.getByLabel('Full name').fill('Ada Lovelace');
  await page.getByLabel('Address line 1').fill('12 Analytical Row');
  await page.getByLabel('City').fill('London');
  await page.getByLabel('Postal code').fill('N1 9GU');
  await page.getByLabel('Country code').fill('GB');
  await page.getByRole('button', { name: 'Save address' }).click();
  // The checkout chooses the new address.
  await expect(page.getByRole('radio', { name: /Ada Lovelace/ })).toBeChecked();
}

/** Pays at the checkout page with a card number. */
export async function pay(page: Page, card: string): Promise<void> {
  await page.getByLabel('Card number').fill(card);
  await page.getByLabel('Expiry (MM/YY)').fill('12/34');
  await page.getByLabel('CVC').fill('123');
  await page.getByRole('button', { name: 'Place order' }).click();
}

/**
 * Signs a browser context in with a refresh token got through the API, as the app keeps it,
 * instead of another login (the auth service allows a client, and all of these tests are
 * 127.0.0.1, 20 login attempts in 5 minutes): the token is exchanged through the context's own
 * requests, which share its cookies, for the HttpOnly cookie the gateway sets, and the app's
 * hint that this browser signed in goes into its localStorage (set only when absent).
 */
export async function signIn(context: BrowserContext, refreshToken: string): Promise<void> {
  const url = new URL('/api/v1/auth/refresh', process.env.STOREFRONT_URL).toString();
  const exchanged = await context.request.post(url, {
    data: { refresh_token: refreshToken },
    headers: { 'X-Refresh-Token-Delivery': 'cookie' },
  });
  expect(exchanged.ok(), await exchanged.text()).toBe(true);
  await context.addInitScript(() => {
    if (!localStorage.getItem('emporium.signedIn')) localStorage.setItem('emporium.signedIn', '1');
  });
}

/** A customer who bought `productIds` through the API (paid), for the pages that need one. */
export async function customerWithOrder(
  request: APIRequestContext,
  productIds: string[],
  card: string,
): Promise<{ email: string; orderId: string; token: string; refreshToken: string }> {
  const email = newEmail('buyer');
  const key = () => ({ 'Idempotency-Key': randomUUID() });
  const ok = async (response: Awaited<ReturnType<APIRequestContext['post']>>): Promise<any> => {
    expect(response.ok(), `${response.url()}: ${response.status()} ${await response.text()}`).toBeTruthy();
    return response.json();
  };
  await ok(await request.post('/api/v1/auth/register', { data: { email, password: PASSWORD }, headers: key() }));
  const pair = await ok(await request.post('/api/v1/auth/login', { data: { email, password: PASSWORD }, headers: key() }));
  const auth = { Authorization: `Bearer ${pair.access_token}` };
  for (const id of productIds) {
    await ok(
      await request.put(`/api/v1/cart/items/${id}`, {
        data: { product_id: id, quantity: 1 },
        headers: { ...auth, ...key() },
      }),
    );
  }
  const address = await ok(
    await request.post('/api/v1/addresses', {
      data: { recipient_name: 'Grace Hopper', line1: '1 Cobol Way', city: 'Arlington', country_code: 'US', postal_code: '22201' },
      headers: { ...auth, ...key() },
    }),
  );
  const method = await ok(
    await request.post('/api/v1/payment-methods', {
      data: { card_number: card, cvc: '123', exp_month: 12, exp_year: 2034 },
      headers: { ...auth, ...key() },
    }),
  );
  const idem = randomUUID();
  const checkout = await ok(
    await request.post('/api/v1/checkout', {
      data: { idempotency_key: idem, shipping_address_id: address.id, payment_method_id: method.id },
      headers: { ...auth, 'Idempotency-Key': idem },
    }),
  );
  return { email, orderId: checkout.order.id, token: pair.access_token, refreshToken: pair.refresh_token };
}
