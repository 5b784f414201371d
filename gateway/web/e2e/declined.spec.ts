import { expect, test } from '@playwright/test';
import { PASSWORD, addToCart, fillAddress, newEmail, openProduct, pay, seed } from './fixtures';

test('a declined card shows the reason and leaves the cart as it was', async ({ page }) => {
  const data = seed();
  const product = data.shops[1]!.products[1]!;

  await page.goto('/register');
  await page.getByLabel('Email').fill(newEmail('declined'));
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByRole('button', { name: 'Log out' })).toBeAttached();

  await openProduct(page, 'Tea', product.name);
  await addToCart(page);
  await page.goto('/checkout');
  await fillAddress(page);
  await pay(page, data.declined_card);

  const failure = page.getByTestId('payment-failed');
  await expect(failure).toBeVisible();
  await expect(failure).toContainText(/declined/i);
  await expect(page).toHaveURL(/\/checkout$/);

  await page.goto('/cart');
  await expect(page.getByTestId('cart-line')).toHaveCount(1);
  await expect(page.getByTestId('cart-line')).toContainText(product.name);

  // The same cart then goes through with a good card.
  await page.goto('/checkout');
  await pay(page, data.card);
  await expect(page).toHaveURL(/\/orders\//);
  await expect(page.getByTestId('order-status')).toHaveText('paid');
});
