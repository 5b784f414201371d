import { randomUUID } from 'node:crypto';
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { logIn, openProduct, addToCart, seed } from './fixtures';

// One seller session for the file: the auth service allows 20 logins per client in 5 minutes.
test.describe.configure({ mode: 'serial' });
let sellerContext: BrowserContext;
let seller: Page;

test.beforeAll(async ({ browser }) => {
  const data = seed();
  sellerContext = await browser.newContext();
  seller = await sellerContext.newPage();
  await logIn(seller, data.seller.email, data.seller.password);
});

test.afterAll(async () => {
  await sellerContext.close();
});

test('a seller’s new voucher discounts a shopper’s cart, and a bad code is told apart', async ({ browser }) => {
  const data = seed();
  const shop = data.shops[1]!;
  const tea = shop.products[0]!;
  const code = `TEA10-${randomUUID().slice(0, 6)}`.toUpperCase();

  // The seller makes a 10% voucher for their tea shop in the seller console.
  await seller.goto(`/seller/shops/${shop.id}?tab=vouchers`);
  await seller.getByText('New voucher').click();
  const form = seller.getByRole('form', { name: 'New voucher' });
  // A code with a space is refused beside the field, with the API's reason.
  await form.getByLabel('Code').fill('TEA 10');
  await form.getByLabel('Percent off').fill('10');
  await form.getByRole('button', { name: 'Create voucher' }).click();
  await expect(form.locator('#f-code-error')).toBeVisible();
  await expect(form.getByLabel('Code')).toHaveAttribute('aria-invalid', 'true');
  // What was typed stays, to be corrected.
  await expect(form.getByLabel('Code')).toHaveValue('TEA 10');
  await expect(form.getByLabel('Percent off')).toHaveValue('10');
  await form.getByLabel('Code').fill(code);
  await form.getByRole('button', { name: 'Create voucher' }).click();
  await expect(seller.getByRole('row').filter({ hasText: code })).toContainText('10%');

  // A guest applies it to a cart with the shop's tea.
  const guest = await browser.newContext();
  const page = await guest.newPage();
  await openProduct(page, 'Tea', tea.name);
  await addToCart(page);
  await page.goto('/cart');
  await page.getByLabel('Voucher code').fill('NO-SUCH-CODE');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.getByRole('alert')).toBeVisible();
  await page.getByLabel('Voucher code').fill(code);
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.getByText(`Voucher ${code}:`)).toContainText('$1.20');
  await expect(page.getByTestId('cart-total')).toHaveText('$10.80');
  await guest.close();
});

test('a seller takes a product out of stock and puts it back, and shoppers see it', async ({ browser }) => {
  const data = seed();
  const shop = data.shops[0]!;
  const product = shop.products[1]!;

  await seller.goto(`/seller/shops/${shop.id}?tab=products`);
  const row = seller.getByRole('listitem').filter({ has: seller.getByRole('link', { name: product.name, exact: true }) });
  const stock = row.getByLabel('Stock on hand');
  await expect(stock).not.toHaveValue('');
  // The field shows what was typed at once; the shopper looks only once the write is answered.
  const setStock = async (value: string) => {
    await stock.fill(value);
    const written = seller.waitForResponse(
      (response) =>
        response.request().method() === 'PUT' && response.url().endsWith(`/api/v1/products/${product.id}/stock`),
    );
    await row.getByRole('button', { name: 'Set stock' }).click();
    expect((await written).ok()).toBe(true);
    await expect(stock).toHaveValue(value);
  };

  const shopper = await browser.newPage();
  try {
    await setStock('0');
    await shopper.goto(`/products/${product.id}`);
    await expect(shopper.getByTestId('availability')).toHaveText('Out of stock');
    await expect(shopper.getByRole('button', { name: 'Add to cart' })).toBeDisabled();
  } finally {
    await setStock('40');
  }
  await shopper.reload();
  await expect(shopper.getByTestId('availability')).toContainText('In stock');
  await shopper.close();
});
