import { defineConfig } from '@playwright/test';

// Debian's chromium (CHROMIUM_PATH) is driven as it is: no browser is ever downloaded.
process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = '1';

const output = process.env.STOREFRONT_OUTPUT ?? 'output';

export default defineConfig({
  testDir: './e2e',
  workers: 1,
  retries: 0,
  fullyParallel: false,
  forbidOnly: true,
  timeout: 150_000,
  expect: { timeout: 20_000 },
  outputDir: `${output}/test-results`,
  reporter: [['list']],
  use: {
    baseURL: process.env.STOREFRONT_URL,
    launchOptions: { executablePath: process.env.CHROMIUM_PATH },
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    viewport: { width: 1280, height: 800 },
  },
});
