// The API reference page (/api/): RapiDoc renders the OpenAPI document that the gateway serves
// at /openapi.json (generated from the protos). Bundled here, so it runs under the gateway's CSP.
import 'rapidoc'

const doc = document.createElement('rapi-doc')
const dark = window.matchMedia('(prefers-color-scheme: dark)').matches
for (const [name, value] of Object.entries({
  'spec-url': '/openapi.json',
  'render-style': 'read',
  'show-header': 'false',
  'allow-try': 'true',
  'allow-server-selection': 'false',
  'allow-authentication': 'true',
  'persist-auth': 'false',
  'schema-description-expanded': 'true',
  theme: dark ? 'dark' : 'light',
  'primary-color': '#2563eb',
  'load-fonts': 'false', // no web fonts from elsewhere (the CSP allows only this origin)
})) {
  doc.setAttribute(name, value)
}
doc.style.height = '100vh'
document.body.appendChild(doc)
