// Signed content URLs expire (after one to two hours): an <img> whose URL fails gets the asset
// again, once, for fresh URLs before it shows the "unavailable" fallback.
import { computed, ref } from 'vue'
import { contentUrl, getAsset } from './api.js'

const EXPIRY_MARGIN_MS = 60_000

/** True when the asset carries no signed URL or its URLs expire within a minute. */
export function urlsExpireSoon(asset, now = Date.now()) {
  const expires = Date.parse((asset && asset.contentUrls && asset.contentUrls.expireTime) || '')
  return !contentUrl(asset) || (Number.isFinite(expires) && expires - now < EXPIRY_MARGIN_MS)
}

/**
 * `src`: the signed URL of `variant` (falling back to the original); `original`: the
 * original's URL, for links; `renew()`: gets fresh URLs (at most once); `onError`: the
 * <img> error handler; `broken`: true once the image cannot be shown.
 */
export function useContentUrls(initial, variant) {
  const asset = ref(initial)
  const broken = ref(false)
  const src = computed(() => contentUrl(asset.value, variant))
  const original = computed(() => contentUrl(asset.value, 'original'))
  let renewal = null

  function renew() {
    renewal ||= getAsset(initial.name)
      .then((fresh) => {
        if (contentUrl(fresh)) asset.value = fresh
      })
      .catch(() => {})
    return renewal
  }

  async function onError() {
    const failed = src.value
    await renew()
    if (src.value === failed) broken.value = true
  }

  return { src, original, broken, renew, onError }
}
