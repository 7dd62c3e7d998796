import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// `npm run dev` proxies the API to a running server (AIRTRUCT_URL, default http://127.0.0.1:18180).
export default defineConfig({
  plugins: [react()],
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 400 },
  server: {
    proxy: { '/api': process.env.AIRTRUCT_URL ?? 'http://127.0.0.1:18180' },
  },
});
