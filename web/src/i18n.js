// Minimal i18n: English + Simplified Chinese, no library.
import { ref, watchEffect } from 'vue'

const messages = {
  en: {
    appName: 'ImgTag',
    tagline: 'Your photos, organized',
    upload: 'Upload',
    chooseFiles: 'Choose images to upload',
    dropHint: 'Drop images anywhere to upload',
    dropHere: 'Drop images to upload',
    langToggle: '中文',
    langToggleLabel: 'Switch language to Chinese',
    uploadsTitle: 'Uploads',
    uploadSummary: '{done} of {total} finished',
    clearFinished: 'Clear finished',
    stateQueued: 'Queued',
    stateUploading: 'Uploading…',
    stateDone: 'Done',
    stateError: 'Failed',
    notAnImage: 'Not an image file',
    loading: 'Loading…',
    loadMore: 'Load more',
    emptyTitle: 'No images yet',
    emptyBody: 'Click “Upload” or drop photos onto this page to get started.',
    loadFailed: 'Could not load images: {message}',
    retry: 'Retry',
    close: 'Close',
    details: 'Image details',
    filename: 'File name',
    type: 'Type',
    size: 'Size',
    dimensions: 'Dimensions',
    sha256: 'SHA-256',
    created: 'Created',
    openOriginal: 'Open original',
    moveToTrash: 'Move to trash',
    trashing: 'Moving…',
    trashed: 'Moved “{name}” to trash',
    trashFailed: 'Could not move to trash: {message}',
    imageUnavailable: 'Preview unavailable',
    untitled: 'Untitled',
    count: '{n} images',
    // sign-in, registration, session
    signInTitle: 'Sign in to ImgTag',
    signIn: 'Sign in',
    signingIn: 'Signing in…',
    loginLabel: 'Username or email',
    password: 'Password',
    signOut: 'Sign out',
    signedInAs: 'Signed in as {name}',
    noAccount: 'No account yet?',
    createAccount: 'Create an account',
    haveAccount: 'Already have an account?',
    registerTitle: 'Create your account',
    username: 'Username',
    usernameHint: '3–32 letters, digits, “_”, “.” or “-”',
    email: 'Email',
    displayName: 'Display name (optional)',
    passwordHint: 'At least {n} characters',
    confirmPassword: 'Confirm password',
    register: 'Create account',
    registering: 'Creating account…',
    fieldRequired: 'This field is required.',
    passwordsDiffer: 'The passwords do not match.',
    registeredPending:
      'Your account “{name}” has been created and is waiting for an administrator’s approval. You can sign in once it has been approved.',
    registeredActive: 'Your account “{name}” has been created. Sign in to continue.',
    sessionEnded: 'Your session has ended. Please sign in again.',
    signOutFailed: 'You are signed out here, but the server could not be told: {message}',
    networkError: 'Could not reach ImgTag. Check your connection and try again.',
    unexpectedError: 'Something went wrong: {message}',
    reason_CREDENTIALS_REQUIRED: 'Enter your username or email and your password.',
    reason_INVALID_LOGIN: 'Wrong username or password.',
    reason_USER_PENDING_APPROVAL:
      'Your account is waiting for an administrator’s approval. You can sign in once it has been approved.',
    reason_USER_REJECTED: 'An administrator declined this registration. Contact them if you think this is a mistake.',
    reason_USER_DISABLED: 'This account has been disabled by an administrator.',
    reason_TOO_MANY_ATTEMPTS: 'Too many failed attempts. Please wait a few minutes and try again.',
    reason_TOO_MANY_ATTEMPTS_WAIT: 'Too many failed attempts. Please try again in {minutes} min.',
    reason_REGISTRATION_CLOSED: 'Registration is closed on this server. Ask an administrator for an account.',
    reason_INVALID_USERNAME: 'Use 3–32 characters: letters, digits, “_”, “.” or “-”.',
    reason_USERNAME_TAKEN: 'This username is already taken.',
    reason_INVALID_EMAIL: 'Enter a valid email address, like name@example.com.',
    reason_EMAIL_TAKEN: 'An account with this email address already exists.',
    reason_PASSWORD_REQUIRED: 'Enter a password.',
    reason_PASSWORD_TOO_SHORT: 'The password needs at least {min} characters.',
    reason_PASSWORD_TOO_LONG: 'The password can have at most {max} characters.',
    reason_INVALID_PASSWORD: 'The password cannot contain control characters.',
    reason_INVALID_DISPLAY_NAME: 'The display name is too long.',
  },
  zh: {
    appName: 'ImgTag',
    tagline: '让照片井井有条',
    upload: '上传',
    chooseFiles: '选择要上传的图片',
    dropHint: '将图片拖放到页面任意位置即可上传',
    dropHere: '松开鼠标即可上传图片',
    langToggle: 'English',
    langToggleLabel: '切换为英文',
    uploadsTitle: '上传',
    uploadSummary: '已处理 {done} / {total}',
    clearFinished: '清除已完成',
    stateQueued: '等待中',
    stateUploading: '上传中…',
    stateDone: '完成',
    stateError: '失败',
    notAnImage: '不是图片文件',
    loading: '加载中…',
    loadMore: '加载更多',
    emptyTitle: '还没有图片',
    emptyBody: '点击“上传”或将照片拖放到此页面即可开始。',
    loadFailed: '无法加载图片：{message}',
    retry: '重试',
    close: '关闭',
    details: '图片详情',
    filename: '文件名',
    type: '类型',
    size: '大小',
    dimensions: '尺寸',
    sha256: 'SHA-256',
    created: '创建时间',
    openOriginal: '查看原图',
    moveToTrash: '移到回收站',
    trashing: '正在移动…',
    trashed: '已将“{name}”移到回收站',
    trashFailed: '无法移到回收站：{message}',
    imageUnavailable: '无法预览',
    untitled: '未命名',
    count: '{n} 张图片',
    // 登录、注册、会话
    signInTitle: '登录 ImgTag',
    signIn: '登录',
    signingIn: '正在登录…',
    loginLabel: '用户名或邮箱',
    password: '密码',
    signOut: '退出登录',
    signedInAs: '当前用户：{name}',
    noAccount: '还没有账号？',
    createAccount: '注册新账号',
    haveAccount: '已有账号？',
    registerTitle: '注册账号',
    username: '用户名',
    usernameHint: '3–32 个字符：字母、数字、“_”、“.” 或 “-”',
    email: '邮箱',
    displayName: '显示名称（可选）',
    passwordHint: '至少 {n} 个字符',
    confirmPassword: '确认密码',
    register: '注册',
    registering: '正在注册…',
    fieldRequired: '此项为必填项。',
    passwordsDiffer: '两次输入的密码不一致。',
    registeredPending: '账号“{name}”已创建，正在等待管理员审核。审核通过后即可登录。',
    registeredActive: '账号“{name}”已创建，请登录。',
    sessionEnded: '登录已失效，请重新登录。',
    signOutFailed: '已在本机退出，但未能通知服务器：{message}',
    networkError: '无法连接到 ImgTag，请检查网络后重试。',
    unexpectedError: '出错了：{message}',
    reason_CREDENTIALS_REQUIRED: '请输入用户名或邮箱以及密码。',
    reason_INVALID_LOGIN: '用户名或密码错误。',
    reason_USER_PENDING_APPROVAL: '您的账号正在等待管理员审核。审核通过后即可登录。',
    reason_USER_REJECTED: '管理员未通过此账号的注册申请。如有疑问，请联系管理员。',
    reason_USER_DISABLED: '此账号已被管理员停用。',
    reason_TOO_MANY_ATTEMPTS: '失败次数过多，请稍等几分钟后再试。',
    reason_TOO_MANY_ATTEMPTS_WAIT: '失败次数过多，请在 {minutes} 分钟后再试。',
    reason_REGISTRATION_CLOSED: '本服务器已关闭注册。如需账号，请联系管理员。',
    reason_INVALID_USERNAME: '请使用 3–32 个字符：字母、数字、“_”、“.” 或 “-”。',
    reason_USERNAME_TAKEN: '该用户名已被占用。',
    reason_INVALID_EMAIL: '请输入有效的邮箱地址，例如 name@example.com。',
    reason_EMAIL_TAKEN: '该邮箱已注册过账号。',
    reason_PASSWORD_REQUIRED: '请输入密码。',
    reason_PASSWORD_TOO_SHORT: '密码至少需要 {min} 个字符。',
    reason_PASSWORD_TOO_LONG: '密码最多 {max} 个字符。',
    reason_INVALID_PASSWORD: '密码不能包含控制字符。',
    reason_INVALID_DISPLAY_NAME: '显示名称过长。',
  },
}

export const LOCALES = ['en', 'zh']
const STORAGE_KEY = 'imgtag.locale'

export function detectLocale(languages) {
  for (const lang of languages || []) {
    if (typeof lang === 'string' && lang.toLowerCase().startsWith('zh')) return 'zh'
    if (typeof lang === 'string' && lang.toLowerCase().startsWith('en')) return 'en'
  }
  return 'en'
}

function initialLocale() {
  try {
    const saved = localStorage.getItem(STORAGE_KEY)
    if (LOCALES.includes(saved)) return saved
  } catch {
    /* storage unavailable */
  }
  if (typeof navigator === 'undefined') return 'en'
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language]
  return detectLocale(langs)
}

export const locale = ref(initialLocale())

/** BCP 47 tag for Intl APIs and <html lang>. */
export const intlLocale = () => (locale.value === 'zh' ? 'zh-CN' : 'en')

watchEffect(() => {
  if (typeof document !== 'undefined') document.documentElement.lang = locale.value === 'zh' ? 'zh-CN' : 'en'
})

export function setLocale(value) {
  if (!LOCALES.includes(value)) return
  locale.value = value
  try {
    localStorage.setItem(STORAGE_KEY, value)
  } catch {
    /* storage unavailable */
  }
}

export function toggleLocale() {
  setLocale(locale.value === 'zh' ? 'en' : 'zh')
}

/** Translate `key`, replacing {placeholders} from `params`. Reactive on `locale`. */
export function t(key, params) {
  const table = messages[locale.value] || messages.en
  let s = table[key] ?? messages.en[key] ?? key
  if (params) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m))
  return s
}

/**
 * A sentence for an API error in the current language: the translation of its ErrorInfo
 * reason when there is one, else a network or generic message. `params` fill placeholders
 * (e.g. {min} for PASSWORD_TOO_SHORT).
 */
export function errorText(err, params = {}) {
  const reason = err && err.reason
  if (reason === 'TOO_MANY_ATTEMPTS') {
    const seconds = Number(err.metadata && err.metadata.retry_after_s)
    if (seconds > 0) return t('reason_TOO_MANY_ATTEMPTS_WAIT', { minutes: Math.ceil(seconds / 60) })
  }
  if (reason && `reason_${reason}` in messages.en) return t(`reason_${reason}`, params)
  if (err && err.status === 0) return t('networkError')
  return t('unexpectedError', { message: (err && err.message) || String(err) })
}

export { messages }
