import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { customerWithOrder, logIn, output, seed, signIn } from './fixtures';

const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');

const SIZES = [
  { name: 'phone', width: 390, height: 844 },
  { name: 'desktop', width: 1280, height: 800 },
] as const;

interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

const report: Record<string, { rulesPassed: number; violations: Violation[] }> = {};

/** A screenshot of the page at each width, and axe-core's findings on it. */
async function check(page: Page, name: string, ready: () => Promise<void>) {
  const dir = join(output(), 'screenshots');
  mkdirSync(dir, { recursive: true });
  for (const size of SIZES) {
    await page.setViewportSize({ width: size.width, height: size.height });
    await ready();
    await page.screenshot({ path: join(dir, `${name}-${size.name}.png`), fullPage: true });
    // The app's CSP forbids inline scripts; this context bypasses it to add axe-core.
    await page.addScriptTag({ path: AXE });
    const result = (await page.evaluate(async () => {
      type Axe = { run: (ctx: Document, o: object) => Promise<{ violations: unknown[]; passes: unknown[] }> };
      const axe = (window as unknown as { axe: Axe }).axe;
      const found = await axe.run(document, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
      });
      return { rulesPassed: found.passes.length, violations: found.violations };
    })) as { rulesPassed: number; violations: Violation[] };
    // axe-core ran its rules on the page (colour contrast, labels, landmarks...).
    expect(result.rulesPassed).toBeGreaterThan(10);
    report[`${name}-${size.name}`] = result;
  }
}

test.describe.configure({ mode: 'serial' });

test('the main pages at phone and desktop widths, with no serious accessibility violation', async ({ browser, request }) => {
  const data = seed();
  const product = data.shops[0]!.products[0]!;
  const buyer = await customerWithOrder(request, [product.id], data.card);

  // The CSP allows no inline script; these contexts bypass it to add axe-core.
  const guest = await browser.newContext({ bypassCSP: true });
  let page = await guest.newPage();
  const heading = (name: string | RegExp) => async () => {
    await expect(page.getByRole('heading', { level: 1, name })).toBeVisible();
    await expect(page.locator('.loading')).toHaveCount(0);
  };

  await page.goto('/');
  await check(page, 'home', heading('Welcome to Emporium'));
  await page.goto('/search?q=Lamp');
  await check(page, 'search', heading(/Lamp/));
  await page.goto(`/products/${product.id}`);
  await check(page, 'product', heading(product.name));
  await page.goto('/login');
  await check(page, 'login', heading('Log in'));
  await guest.close();

  const customer = await browser.newContext({ bypassCSP: true });
  await signIn(customer, buyer.refreshToken);
  page = await customer.newPage();
  await page.goto(`/products/${data.shops[1]!.products[0]!.id}`);
  await expect(page.getByRole('button', { name: 'Log out' })).toBeAttached();
  await page.getByRole('button', { name: 'Add to cart' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Added to your cart' })).toBeVisible();
  await page.goto('/cart');
  await check(page, 'cart', heading('Your cart'));
  await page.goto('/checkout');
  await check(page, 'checkout', heading('Checkout'));
  await page.goto(`/orders/${buyer.orderId}`);
  await check(page, 'order', async () => {
    await expect(page.getByTestId('order-status')).toHaveText('paid');
    await expect(page.getByText('Updates live')).toBeVisible();
  });
  await page.goto('/orders');
  await check(page, 'orders', heading('Your orders'));
  await customer.close();

  const sellerContext = await browser.newContext({ bypassCSP: true });
  page = await sellerContext.newPage();
  await logIn(page, data.seller.email, data.seller.password);
  await page.goto('/seller');
  await check(page, 'seller', heading('Seller console'));
  await page.goto(`/seller/shops/${data.shops[0]!.id}`);
  await check(page, 'seller-shop', heading(new RegExp(data.shops[0]!.name)));
  await sellerContext.close();

  const admin = await browser.newContext({ bypassCSP: true });
  const adminPage = await admin.newPage();
  await logIn(adminPage, data.admin.email, data.admin.password);
  await adminPage.goto('/admin/sagas');
  await check(adminPage, 'admin-sagas', async () => {
    await expect(adminPage.getByRole('heading', { level: 1, name: 'Operations console' })).toBeVisible();
    await expect(adminPage.locator('.loading')).toHaveCount(0);
  });
  await adminPage.goto('/admin/dead-letters');
  await check(adminPage, 'admin-dead-letters', async () => {
    await expect(adminPage.getByTestId('dead-letter').first()).toBeVisible();
    await expect(adminPage.locator('.loading')).toHaveCount(0);
  });
  await adminPage.goto('/admin/services');
  await check(adminPage, 'admin-services', async () => {
    await expect(adminPage.getByRole('link', { name: 'Services' })).toHaveAttribute('aria-current', 'page');
    await expect(adminPage.locator('.loading')).toHaveCount(0);
  });
  await adminPage.goto('/admin/settings');
  await check(adminPage, 'admin-settings', async () => {
    await expect(adminPage.locator('.settings li').first()).toBeVisible();
  });

  writeFileSync(join(output(), 'axe-report.json'), JSON.stringify(report, null, 2));
  const serious = Object.entries(report).flatMap(([pageName, { violations }]) =>
    violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${pageName}: ${v.id} (${v.impact}) ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
  );
  expect(serious, serious.join('\n')).toEqual([]);
  await admin.close();
});
