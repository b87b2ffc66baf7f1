// The sidebar's data: the collection tree and the tag vocabulary with usage counts.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api, idOf, ok } from '../api/client'
import type { V1Collection, V1CollectionNode, V1Tag } from '../api/schema'

export interface FlatCollection {
  collection: V1Collection
  depth: number
}

export const useLibrary = defineStore('library', () => {
  const tree = ref<V1CollectionNode[]>([])
  const tags = ref<V1Tag[]>([])
  const loaded = ref(false)

  const flat = computed<FlatCollection[]>(() => {
    const out: FlatCollection[] = []
    const walk = (nodes: V1CollectionNode[], depth: number) => {
      for (const node of nodes) {
        if (node.collection) out.push({ collection: node.collection, depth })
        walk(node.children ?? [], depth + 1)
      }
    }
    walk(tree.value, 0)
    return out
  })

  function collectionByName(name: string): V1Collection | undefined {
    return flat.value.find((f) => f.collection.name === name)?.collection
  }

  function tagByName(name: string): V1Tag | undefined {
    return tags.value.find((t) => t.name === name)
  }

  async function loadTree(): Promise<void> {
    const data = await ok(api.GET('/v1/collections:tree', {}))
    tree.value = data.nodes ?? []
  }

  async function loadTags(): Promise<void> {
    const data = await ok(
      api.GET('/v1/tags', { params: { query: { page_size: 1000, order_by: 'usage_count desc' } } }),
    )
    tags.value = data.tags ?? []
  }

  async function load(): Promise<void> {
    await Promise.all([loadTree(), loadTags()])
    loaded.value = true
  }

  async function createCollection(displayName: string, parent = '', autoTags: string[] = []): Promise<V1Collection> {
    const made = await ok(api.POST('/v1/collections', { body: { displayName, parent, autoTags } }))
    await loadTree()
    return made
  }

  async function updateCollection(name: string, displayName: string, autoTags: string[]): Promise<void> {
    await ok(
      api.PATCH('/v1/collections/{collection}', {
        params: { path: { collection: idOf(name) }, query: { update_mask: 'displayName,autoTags' } },
        body: { name, displayName, autoTags },
      }),
    )
    await Promise.all([loadTree(), loadTags()])
  }

  async function moveCollection(name: string, newParent: string): Promise<void> {
    await ok(
      api.POST('/v1/collections/{collection}:move', {
        params: { path: { collection: idOf(name) } },
        body: { name, newParent },
      }),
    )
    await loadTree()
  }

  async function deleteCollection(name: string): Promise<void> {
    await ok(
      api.DELETE('/v1/collections/{collection}', {
        params: { path: { collection: idOf(name) }, query: { children: 'REPARENT' } },
      }),
    )
    await loadTree()
  }

  return {
    tree, tags, loaded, flat, collectionByName, tagByName,
    load, loadTree, loadTags, createCollection, updateCollection, moveCollection, deleteCollection,
  }
})
