import { expect, test } from '@playwright/test';
import { customerWithOrder, logIn, seed, signIn } from './fixtures';

test('a customer who bought a product reviews it with the verified-purchase mark, and the seller answers', async ({
  page,
  request,
  browser,
}) => {
  const data = seed();
  const product = data.shops[0]!.products[1]!;
  const buyer = await customerWithOrder(request, [product.id], data.card);

  await signIn(page.context(), buyer.refreshToken);
  await page.goto(`/products/${product.id}`);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeAttached();
  await page.getByLabel('Rating', { exact: true }).selectOption('4');
  await page.getByLabel('Title', { exact: true }).fill('Soft light, sturdy seams');
  await page.getByLabel('Review', { exact: true }).fill('Fits the brass lamp well and washes fine.');
  await page.getByRole('button', { name: 'Publish review' }).click();
  await expect(page.getByText('Thank you: your review is published.')).toBeVisible();

  // The mark comes from the order's paid event, which the comment service consumes on its
  // own time: reload until the review shows it.
  const review = page.getByTestId('review').filter({ hasText: 'Soft light, sturdy seams' });
  await expect(async () => {
    await page.reload();
    await expect(review.getByText('Verified purchase')).toBeVisible({ timeout: 2000 });
  }).toPass({ timeout: 60_000 });
  await expect(page.locator('.rating-summary')).toContainText('4.0');
  await expect(page.locator('.rating-summary')).toContainText('1 review');

  // The seller answers it from the product page; the customer sees the answer.
  const sellerContext = await browser.newContext();
  const seller = await sellerContext.newPage();
  await logIn(seller, data.seller.email, data.seller.password);
  await seller.goto(`/products/${product.id}`);
  const theirs = seller.getByTestId('review').filter({ hasText: 'Soft light, sturdy seams' });
  await theirs.getByLabel('Your reply as the seller').fill('Thank you! Wash it cold to keep the linen soft.');
  await theirs.getByRole('button', { name: 'Reply' }).click();
  await expect(theirs.getByText('Your reply is published.')).toBeVisible();
  await sellerContext.close();
  await page.reload();
  await expect(review.locator('.reply')).toContainText('Wash it cold');
});
