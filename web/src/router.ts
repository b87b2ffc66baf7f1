// Screens by URL. The gallery (library, collection, search, trash) is in the first bundle; the
// other screens load when first opened. The detail view is an overlay on the gallery
// (?asset=<id>), so closing it returns to the same scroll position.
import { createRouter, createWebHistory } from 'vue-router'
import GalleryView from './views/GalleryView.vue'

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/', name: 'library', component: GalleryView },
    { path: '/search', name: 'search', component: GalleryView },
    { path: '/collections/:id', name: 'collection', component: GalleryView },
    { path: '/trash', name: 'trash', component: GalleryView },
    { path: '/duplicates', name: 'duplicates', component: () => import('./views/DuplicatesView.vue') },
    { path: '/tags', name: 'tags', component: () => import('./views/TagsView.vue') },
    { path: '/settings/account', name: 'account', component: () => import('./views/AccountView.vue') },
    { path: '/settings/api-keys', name: 'api-keys', component: () => import('./views/ApiKeysView.vue') },
    { path: '/settings/users', name: 'users', component: () => import('./views/UsersView.vue') },
    { path: '/settings/system', name: 'system', component: () => import('./views/SystemView.vue') },
    { path: '/:rest(.*)*', redirect: '/' },
  ],
})
