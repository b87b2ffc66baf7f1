// Admin screens run an action, then show the new state: one way to do it, errors as toasts.

/** A runner for actions of a screen: each is awaited, then `reload` runs; a failure of either
 * goes to `fail` (the toasts store's, which shows it in the current language). */
export function actThenReload(reload: () => Promise<void>, fail: (err: unknown) => void) {
  return async (call: () => Promise<unknown>): Promise<void> => {
    try {
      await call()
      await reload()
    } catch (err) {
      fail(err)
    }
  }
}
