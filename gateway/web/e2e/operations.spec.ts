import { randomUUID } from 'node:crypto';
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { PASSWORD, logIn, newEmail, seed } from './fixtures';

// One admin session for the file: the auth service allows 20 logins per client in 5 minutes.
test.describe.configure({ mode: 'serial' });
let adminContext: BrowserContext;
let admin: Page;

test.beforeAll(async ({ browser }) => {
  const data = seed();
  adminContext = await browser.newContext();
  admin = await adminContext.newPage();
  await logIn(admin, data.admin.email, data.admin.password);
});

test.afterAll(async () => {
  await adminContext.close();
});

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

  await sellerContext.close();
});

test('a review with a link waits for a moderator, who publishes it', async ({ browser }) => {
  const data = seed();
  const product = data.shops[1]!.products[1]!;
  const title = `Cups for the whole table ${randomUUID().slice(0, 4)}`;

  const customer = await browser.newContext();
  const page = await customer.newPage();
  await page.goto('/register');
  await page.getByLabel('Email').fill(newEmail('moderated'));
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByRole('button', { name: 'Log out' })).toBeAttached();
  await page.goto(`/products/${product.id}`);
  await page.getByLabel('Title', { exact: true }).fill(title);
  await page.getByLabel('Review', { exact: true }).fill('More of the set at www.example.com');
  await page.getByRole('button', { name: 'Publish review' }).click();
  await expect(page.getByText('Your review waits for a moderator before it is published.')).toBeVisible();
  await expect(page.getByTestId('review').filter({ hasText: title })).toHaveCount(0);

  await admin.goto('/admin/reviews');
  const queued = admin.getByRole('listitem').filter({ hasText: title });
  await expect(queued).toBeVisible();
  await queued.getByRole('button', { name: 'Publish' }).click();
  await expect(queued).toHaveCount(0);

  await page.reload();
  await expect(page.getByTestId('review').filter({ hasText: title })).toBeVisible();
  await customer.close();
});

/** The sequence of the one letter of `eventId` listed now. */
async function sequenceOf(page: Page, eventId: string): Promise<bigint> {
  const letter = page.getByTestId('dead-letter').filter({ hasText: eventId });
  await expect(letter).toHaveCount(1, { timeout: 1_000 });
  return BigInt((await letter.getByTestId('sequence').textContent()) ?? '0');
}

/** Refreshes the listing until the letter of `eventId` is back with a sequence above `than`. */
async function backAfter(page: Page, eventId: string, than: bigint): Promise<bigint> {
  let sequence = 0n;
  await expect(async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect(page.locator('.loading')).toHaveCount(0, { timeout: 2_000 });
    sequence = await sequenceOf(page, eventId);
    expect(sequence).toBeGreaterThan(than);
  }).toPass({ timeout: 20_000 });
  return sequence;
}

test('an admin redrives a dead letter; its consumer gives it up again', async () => {
  const { dead_letter: seeded } = seed();

  await admin.goto('/admin');
  await admin.getByRole('navigation', { name: 'Operations' }).getByRole('link', { name: 'Dead letters' }).click();
  await expect(admin).toHaveURL(/\/admin\/dead-letters$/);

  // The consumer that gave the seeded event up holds one letter, in the table and the filter.
  const row = admin.getByRole('table', { name: 'Consumers holding dead letters' }).getByRole('row').filter({ hasText: seeded.consumer });
  await expect(row.locator('td[data-label="Dead letters"]')).toHaveText('1');
  await expect(row.locator('td[data-label="Event type"]')).toHaveText(seeded.event_type);
  const filter = admin.getByLabel('Consumer', { exact: true });
  await expect(filter.locator('option', { hasText: `${seeded.consumer} (1)` })).toHaveCount(1);
  await filter.selectOption(seeded.consumer);

  // The letter, with why the consumer gave it up.
  const letter = admin.getByTestId('dead-letter').filter({ hasText: seeded.event_id });
  await expect(letter).toHaveCount(1);
  await expect(letter).toContainText(seeded.event_type);
  await expect(letter.locator('dd').filter({ hasText: /^terminated: user_id/ })).toBeVisible();
  await expect(letter.getByRole('region', { name: /^Payload of letter/ })).toContainText('not-a-uuid');
  const first = await sequenceOf(admin, seeded.event_id);

  // Redriven, it reaches the same consumer again, which gives it up again: a new letter.
  await letter.getByRole('button', { name: `Redrive letter ${first}` }).click();
  await expect(admin.getByRole('status').filter({ hasText: /^Redriven 1; [01] left$/ })).toBeVisible();
  const second = await backAfter(admin, seeded.event_id, first);
  await expect(row.locator('td[data-label="Dead letters"]')).toHaveText('1');
  await expect(filter.locator('option', { hasText: `${seeded.consumer} (1)` })).toHaveCount(1);

  // "Redrive all" of the consumer does the same with all of its letters: the one.
  await row.getByRole('button', { name: `Redrive all of ${seeded.consumer}` }).click();
  await expect(admin.getByRole('status').filter({ hasText: /^Redriven 1; [01] left$/ })).toBeVisible();
  await backAfter(admin, seeded.event_id, second);
  await expect(row.locator('td[data-label="Dead letters"]')).toHaveText('1');
});
