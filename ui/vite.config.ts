import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// `npm run dev` proxies the API, and the /mcp endpoint the MCP tools page shows, to a running server (AIRTRUCT_URL,
// default http://127.0.0.1:18180).
const server = process.env.AIRTRUCT_URL ?? 'http://127.0.0.1:18180';

export default defineConfig({
  plugins: [react()],
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 400 },
  server: {
    proxy: { '/api': server, '/mcp': server },
  },
});
