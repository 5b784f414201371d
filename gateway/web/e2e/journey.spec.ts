import { expect, test } from '@playwright/test';
import { PASSWORD, addToCart, fillAddress, logIn, newEmail, openProduct, pay, seed } from './fixtures';

test('a guest shops from two shops, registers, pays and follows the order live to shipped', async ({ browser }) => {
  const data = seed();
  const [lampShop, teaShop] = data.shops;
  const lamp = lampShop!.products[0]!;
  const tea = teaShop!.products[0]!;

  const customer = await browser.newContext();
  const page = await customer.newPage();
  // The gateway's policy allows no inline script or style: the app must need none.
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content.Security.Policy/i.test(message.text())) problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));

  // A guest searches and adds one product of each shop.
  await openProduct(page, 'Lamp', lamp.name);
  await addToCart(page);
  await openProduct(page, 'Tea', tea.name);
  await addToCart(page);
  await expect(page.getByTestId('cart-count')).toHaveText('2');

  await page.getByRole('link', { name: /^Cart/ }).first().click();
  await expect(page.getByTestId('cart-line')).toHaveCount(2);

  // Registering merges the guest cart into the new account's.
  await page.getByRole('link', { name: 'or create an account' }).click();
  await page.getByLabel('Email').fill(newEmail('journey'));
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/checkout$/);
  await expect(page.getByRole('heading', { name: 'Checkout' })).toBeVisible();
  const summary = page.locator('.summary-lines');
  await expect(summary).toContainText(lamp.name);
  await expect(summary).toContainText(tea.name);

  // Checkout: a new address, the test card shown on the page.
  await fillAddress(page);
  await expect(page.getByRole('radio', { name: /Ada Lovelace/ })).toBeChecked();
  await expect(page.getByText('4242 4242 4242 4242')).toBeVisible();
  // Before paying, the checkout shows what the order will charge: each shop's part with
  // shipping and tax, and the total.
  await expect(page.getByTestId('quote-shop')).toHaveCount(2);
  await expect(page.getByTestId('quote-shop').filter({ hasText: lampShop!.name })).toContainText(lamp.name);
  const quoted = (await page.getByTestId('quote-total').textContent())?.trim() ?? '';
  expect(quoted).toMatch(/\d/);
  await pay(page, data.card);

  await expect(page).toHaveURL(/\/orders\/[0-9a-f-]{36}$/);
  const orderId = page.url().split('/').pop()!;
  await expect(page.getByTestId('order-status')).toHaveText('paid');
  await expect(page.getByText('Updates live')).toBeVisible();
  await expect(page.getByTestId('sub-order')).toHaveCount(2);
  // The order charged the total quoted, and each sub-order says whose shop it is.
  await expect(page.locator('dl.totals')).toContainText(quoted);
  await expect(page.getByTestId('sub-order').filter({ hasText: lamp.name }).getByTestId('sub-order-shop')).toHaveText(
    lampShop!.name,
  );
  // Marks this document: a reload would lose it.
  await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));

  // The seller ships their part in the seller console, in a browser of their own.
  const sellerContext = await browser.newContext();
  const seller = await sellerContext.newPage();
  await logIn(seller, data.seller.email, data.seller.password);
  await seller.goto('/seller');
  await seller.getByRole('link', { name: lampShop!.name }).click();
  const incoming = seller.locator(`[data-testid="seller-sub-order"][data-order-id="${orderId}"]`);
  await expect(incoming).toBeVisible();
  await incoming.getByLabel('Carrier').selectOption('UPS');
  await incoming.getByLabel('Tracking number').fill('1Z999AA10123456784');
  await incoming.getByRole('button', { name: 'Mark shipped' }).click();
  await expect(incoming).toHaveCount(0);

  // The customer's page changes by itself: no reload.
  const shipped = page.getByTestId('sub-order').filter({ hasText: lamp.name });
  await expect(shipped.getByTestId('tracking')).toHaveText('UPS tracking number 1Z999AA10123456784');
  await expect(shipped.locator('.status')).toHaveText('shipped');
  await expect(page.getByTestId('order-status')).toHaveText('partially shipped');
  expect(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed)).toBe(true);
  // Part of it shipped: it can no longer be cancelled.
  await expect(page.getByRole('button', { name: 'Cancel order' })).toHaveCount(0);

  expect(problems).toEqual([]);
  await sellerContext.close();
  await customer.close();
});
