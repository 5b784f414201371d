/// <reference types="vitest" />
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

// The gateway serves dist/ at `/` under `script-src 'self'; style-src 'self'`: no inline
// scripts or styles, hashed file names under assets/ (cached for good), index.html not cached.
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
  server: {
    // `npm run dev` against a running stack (`cargo xtask up`: the gateway on 8080).
    proxy: {
      '/api': { target: process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080', changeOrigin: false },
      '/.well-known': { target: process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080' },
    },
  },
  test: {
    include: ['tests/**/*.test.ts'],
    environment: 'node',
  },
});
