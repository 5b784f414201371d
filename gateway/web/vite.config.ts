/// <reference types="vitest" />
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

// The gateway serves dist/ at `/` under `script-src 'self'; style-src 'self'`: no inline
// scripts or styles, hashed file names under assets/ (cached for good), index.html not cached.
const gateway = process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080';
const proxy = { '/api': { target: gateway }, '/.well-known': { target: gateway } };

export default defineConfig({
  plugins: [preact()],
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    // Inlined assets become data: URLs; keep every asset a file of its own.
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: 'es2022',
  },
  // `npm run dev` (and `vite preview` of a build) against a running stack: `cargo xtask up`
  // puts the gateway on 8080. The preview sends the gateway's policy for the app (edge.rs,
  // APP_CONTENT_SECURITY_POLICY), so a build that needs an inline script or style fails
  // there as it would behind the gateway.
  server: { proxy },
  preview: {
    proxy,
    headers: {
      'Content-Security-Policy':
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    },
  },
  test: {
    include: ['tests/**/*.test.ts'],
    environment: 'node',
  },
});
