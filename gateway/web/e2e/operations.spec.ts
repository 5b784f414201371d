import { randomUUID } from 'node:crypto';
import { expect, test } from '@playwright/test';
import { logIn, seed } from './fixtures';

test('an admin approves a seller’s new shop and reads a checkout saga’s steps', async ({ browser }) => {
  const data = seed();
  const name = `Quay Ceramics ${randomUUID().slice(0, 4)}`;
  const slug = name.toLowerCase().replace(/ /g, '-');

  // The seller opens a shop: it waits for approval.
  const sellerContext = await browser.newContext();
  const seller = await sellerContext.newPage();
  await logIn(seller, data.seller.email, data.seller.password);
  await seller.goto('/seller');
  await seller.getByText('Open a new shop').click();
  const form = seller.getByRole('form', { name: 'Open a shop' });
  await form.getByLabel('Name').fill(name);
  await form.getByLabel('Web address (slug)').fill(slug);
  await form.getByLabel('Contact email').fill(data.seller.email);
  await form.getByRole('button', { name: 'Open shop' }).click();
  await expect(seller.getByText(`${name} is open and waits for an operator's approval.`)).toBeVisible();
  const listed = seller.getByRole('listitem').filter({ hasText: name });
  await expect(listed.locator('.status')).toHaveText('pending');

  // The admin approves it in the operations console.
  const adminContext = await browser.newContext();
  const admin = await adminContext.newPage();
  await logIn(admin, data.admin.email, data.admin.password);
  await admin.goto('/admin/shops');
  const pending = admin.getByRole('listitem').filter({ hasText: name });
  await pending.getByRole('button', { name: `Approve ${name}` }).click();
  await expect(pending).toHaveCount(0);

  await seller.reload();
  await expect(seller.getByRole('listitem').filter({ hasText: name }).locator('.status')).toHaveText('active');

  // Sagas: the checkouts of the other tests, each with its steps.
  await admin.getByRole('link', { name: 'Sagas' }).click();
  await admin.getByLabel('State').selectOption('completed');
  const first = admin.locator('.saga-list > li').first();
  await first.getByRole('button').first().click();
  const steps = first.getByRole('table', { name: 'Steps' });
  await expect(steps).toBeVisible();
  expect(await steps.getByRole('row').count()).toBeGreaterThan(2);
  await expect(first.getByRole('button', { name: 'Retry the current step' })).toHaveCount(0);

  await adminContext.close();
  await sellerContext.close();
});
