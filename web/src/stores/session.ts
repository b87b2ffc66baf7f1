// Who is signed in: nothing shows until the refresh cookie has been tried (a reload stays
// signed in), then the sign-in screen or the app.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api, ok } from '../api/client'
import * as session from '../api/session'
import type { V1User } from '../api/schema'
import { errorText, i18n } from '../i18n'

export type Status = 'restoring' | 'signedOut' | 'signedIn'

export const useSession = defineStore('session', () => {
  const status = ref<Status>('restoring')
  const user = ref<V1User | null>(null)
  // Why the sign-in screen shows, as a function so that it follows the language switch.
  const notice = ref<(() => string) | null>(null)
  const isAdmin = computed(() => user.value?.role === 'ADMIN')

  function showSignedIn(signedIn: V1User): void {
    user.value = signedIn
    notice.value = null
    status.value = 'signedIn'
  }

  function showSignedOut(why: (() => string) | null = null): void {
    user.value = null
    notice.value = why
    status.value = 'signedOut'
  }

  session.onSignedOut(() => showSignedOut(() => i18n.global.t('sessionEnded')))

  async function restore(): Promise<void> {
    try {
      const restored = (await session.refreshSession()) ? await ok(api.GET('/v1/users/me')) : null
      if (status.value !== 'restoring') return
      if (restored) showSignedIn(restored)
      else showSignedOut()
    } catch (err) {
      if (status.value === 'restoring') showSignedOut(() => errorText(err))
    }
  }

  async function signIn(login: string, password: string): Promise<void> {
    showSignedIn((await session.login(login, password)) as V1User)
  }

  async function signOut(): Promise<void> {
    try {
      await session.logout()
      showSignedOut()
    } catch (err) {
      showSignedOut(() => i18n.global.t('signOutFailed', { message: errorText(err) }))
    }
  }

  return { status, user, notice, isAdmin, restore, signIn, signOut, showSignedOut }
})
