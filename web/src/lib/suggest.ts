// Tag autocomplete as the user types (any language: prefix and fuzzy matches on names and
// aliases, most used first), debounced, latest answer wins.
import { ref, type Ref } from 'vue'
import { watchDebounced } from '@vueuse/core'
import { api, ok } from '../api/client'
import type { V1TagSuggestion } from '../api/schema'
import { languageTag } from '../i18n'

export function useTagSuggestions(text: Ref<string>, limit = 8) {
  const suggestions = ref<V1TagSuggestion[]>([])
  let asked = 0
  watchDebounced(
    text,
    async (value) => {
      const mine = ++asked
      const query = value.trim()
      if (!query) {
        suggestions.value = []
        return
      }
      try {
        const data = await ok(api.GET('/v1/tags:autocomplete', { params: { query: { query, limit, language: languageTag() } } }))
        if (mine === asked) suggestions.value = data.suggestions ?? []
      } catch {
        if (mine === asked) suggestions.value = []
      }
    },
    { debounce: 150 },
  )
  return suggestions
}
