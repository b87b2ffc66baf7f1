// Short messages at the bottom of the screen (results of actions, errors as sentences).
import { defineStore } from 'pinia'
import { ref } from 'vue'
import { errorText } from '../i18n'

export interface Toast {
  id: number
  text: string
  kind: 'info' | 'error'
}

export const useToasts = defineStore('toasts', () => {
  const toasts = ref<Toast[]>([])
  let next = 1

  function show(text: string, kind: Toast['kind'] = 'info', ms = 5000): void {
    const id = next++
    toasts.value.push({ id, text, kind })
    setTimeout(() => dismiss(id), ms)
  }

  function dismiss(id: number): void {
    toasts.value = toasts.value.filter((t) => t.id !== id)
  }

  /** Shows an API error in the current language; returns nothing so callers can `.catch(fail)`. */
  function fail(err: unknown): void {
    show(errorText(err), 'error', 8000)
  }

  return { toasts, show, dismiss, fail }
})
