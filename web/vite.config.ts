import { resolve } from 'node:path'
import { defineConfig } from 'vitest/config'
import vue from '@vitejs/plugin-vue'
import tailwindcss from '@tailwindcss/vite'

// During `npm run dev` the REST API lives behind the Envoy gateway; proxy /v1 to it so the SPA
// and the API share an origin exactly as in production.
const gateway = process.env.IMGTAG_GATEWAY || 'http://127.0.0.1:8080'
const proxy = { '/v1': { target: gateway, changeOrigin: true } }

export default defineConfig({
  base: '/',
  plugins: [vue(), tailwindcss()],
  define: {
    // vue-i18n: Composition API only, no legacy API, no devtools in the bundle.
    __VUE_I18N_FULL_INSTALL__: false,
    __VUE_I18N_LEGACY_API__: false,
    __INTLIFY_PROD_DEVTOOLS__: false,
  },
  server: { proxy },
  preview: { proxy },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 1500, // the API reference page's renderer is large; the app is split
    rolldownOptions: {
      // The app, and the API reference page (/api/) that renders openapi.json.
      input: { app: resolve(import.meta.dirname, 'index.html'), reference: resolve(import.meta.dirname, 'api/index.html') },
    },
  },
  test: {
    environment: 'happy-dom',
    include: ['test/**/*.test.ts'],
  },
})
