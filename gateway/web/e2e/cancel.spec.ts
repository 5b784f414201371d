import { expect, test } from '@playwright/test';
import { customerWithOrder, seed, signIn } from './fixtures';

test('a customer cancels a paid order before it ships and finds it in their history', async ({ page, request }) => {
  const data = seed();
  const product = data.shops[1]!.products[1]!;
  const buyer = await customerWithOrder(request, [product.id], data.card);

  await signIn(page.context(), buyer.refreshToken);
  await page.goto('/');
  await page.getByRole('link', { name: 'Orders' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Your orders' })).toBeVisible();
  await page.getByRole('link', { name: new RegExp(`Order ${buyer.orderId.slice(-8)}`) }).click();
  await expect(page.getByTestId('order-status')).toHaveText('paid');

  await page.getByLabel('Reason (optional)').fill('Ordered the wrong cup');
  await page.getByRole('button', { name: 'Cancel order' }).click();
  await expect(page.getByTestId('order-status')).toHaveText('cancelled');
  await expect(page.getByRole('button', { name: 'Cancel order' })).toHaveCount(0);
  await expect(page.locator('.history')).toContainText('Ordered the wrong cup');
});
