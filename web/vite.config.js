import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// During `npm run dev` the REST API lives behind the Envoy gateway; proxy /v1 to it
// so the SPA and the API share an origin exactly like in production.
const gateway = process.env.IMGTAG_GATEWAY || 'http://127.0.0.1:8080'

export default defineConfig({
  base: '/',
  plugins: [vue()],
  server: {
    proxy: {
      '/v1': { target: gateway, changeOrigin: true },
    },
  },
  preview: {
    proxy: {
      '/v1': { target: gateway, changeOrigin: true },
    },
  },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    sourcemap: false,
  },
})
