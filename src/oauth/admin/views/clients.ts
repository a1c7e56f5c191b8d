/**
 * The console's clients (pre-registered, self-registered, metadata documents in the cache with
 * their fingerprints and the trust rule that admits them) and its `cimd inspect` form. Every
 * value a client chose is escaped and cleaned (SEC-25); the gateway's verified facts stand beside.
 */
import { displayText, escapeHtml, type Page } from '../../../http/html.js'
import type { Admin } from '../access.js'
import { adminPage, hidden } from './frame.js'

export interface StaticRow {
  clientId: string
  name: string
  authMethod: string
  grantTypes: readonly string[]
  redirectUris: readonly string[]
}

export interface RegisteredRow {
  clientId: string
  name?: string | undefined
  authMethod: string
  redirectUris: readonly string[]
  issuedAt: number
}

export interface CimdRow {
  clientId: string
  name?: string | undefined
  fetchedAt: number
  expiresAt: number
  fingerprint: string
  displayFingerprint: string
  /** The trust rule that admits (or now refuses) this client id under the configuration in effect. */
  trust: string
  document: string
}

const when = (ms: number) => `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`
const code = (s: string) => `<code>${escapeHtml(displayText(s, 200))}</code>`
const uris = (list: readonly string[]) => list.map(code).join('<br>') || '—'

export function clientsPage(admin: Admin, options: { statics: readonly StaticRow[]; registered: readonly RegisteredRow[] | undefined; cimd: readonly CimdRow[] | undefined }): Page {
  const statics = options.statics
    .map((c) => `<tr><td>${code(c.clientId)}</td><td>${escapeHtml(displayText(c.name))}</td><td>${escapeHtml(c.authMethod)}</td><td>${escapeHtml(c.grantTypes.join(', '))}</td><td>${uris(c.redirectUris)}</td></tr>`)
    .join('\n')
  const registered =
    options.registered === undefined
      ? '<p class="muted">Dynamic registration is off (registration.enabled).</p>'
      : options.registered.length === 0
        ? '<p id="no-registered">No client has registered itself.</p>'
        : `<table><thead><tr><th>Client ID</th><th>Its name</th><th>Authentication</th><th>Registered</th><th>Redirect URIs</th></tr></thead><tbody>
${options.registered.map((c) => `<tr data-client="${escapeHtml(c.clientId)}"><td>${code(c.clientId)}</td><td>${escapeHtml(displayText(c.name ?? '—'))}</td><td>${escapeHtml(c.authMethod)}</td><td>${when(c.issuedAt * 1000)}</td><td>${uris(c.redirectUris)}</td></tr>`).join('\n')}</tbody></table>`
  const cimd =
    options.cimd === undefined
      ? '<p class="muted">Client ID Metadata Documents are off (cimd.enabled).</p>'
      : options.cimd.length === 0
        ? '<p id="no-cimd">No metadata document is cached.</p>'
        : options.cimd
            .map(
              (c) => `<section class="cimd" data-client="${escapeHtml(c.clientId)}"><h3>${code(c.clientId)}</h3><dl>
<dt>Its name</dt><dd>${escapeHtml(displayText(c.name ?? '—'))}</dd>
<dt>Trust</dt><dd>${escapeHtml(c.trust)}</dd>
<dt>Fetched</dt><dd>${when(c.fetchedAt)}, cached until ${when(c.expiresAt)}</dd>
<dt>Fingerprint</dt><dd><code>${escapeHtml(c.fingerprint)}</code> (redirect URIs, authentication, grant types, scope, keys)</dd>
<dt>Display</dt><dd><code>${escapeHtml(c.displayFingerprint)}</code> (name and logo)</dd>
</dl><details><summary>Cached document</summary><pre>${escapeHtml(c.document)}</pre></details>
<form method="post" action="/admin/cimd">${hidden('csrf', admin.csrf)}${hidden('url', c.clientId)}<button type="submit">Inspect</button></form></section>`,
            )
            .join('\n')
  return adminPage(
    'Clients',
    admin,
    `<h2>Pre-registered (configuration)</h2>
${options.statics.length === 0 ? '<p class="muted">None.</p>' : `<table><thead><tr><th>Client ID</th><th>Name</th><th>Authentication</th><th>Grant types</th><th>Redirect URIs</th></tr></thead><tbody>${statics}</tbody></table>`}
<h2>Registered themselves (RFC 7591)</h2>
${registered}
<h2>Metadata documents in the cache (CIMD)</h2>
${cimd}`,
  )
}

export function cimdInspectPage(admin: Admin, options: { url: string; result?: { accepted: boolean; lines: readonly string[] } }): Page {
  const result =
    options.result === undefined
      ? ''
      : `<p role="status" id="verdict">${options.result.accepted ? 'Accepted: the gateway would admit this client id now.' : 'Refused: the gateway would not admit this client id now.'}</p>
<pre id="steps">${escapeHtml(options.result.lines.join('\n'))}</pre>`
  return adminPage(
    'CIMD inspect',
    admin,
    `<p>The decision for one client id URL, step by step, as the gateway takes it: URL rules, trust, cache, fetch, document, policy. The cache is read, never written.</p>
<form method="post" action="/admin/cimd">${hidden('csrf', admin.csrf)}
<label for="url">Client ID URL</label><input id="url" name="url" type="text" required value="${escapeHtml(options.url)}">
<div class="actions"><button class="primary" type="submit">Inspect</button></div></form>
${result}`,
  )
}
