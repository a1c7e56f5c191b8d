/** The console's grants page: a search by person or client, each grant with a revoke button. */
import { displayText, escapeHtml, type Page } from '../../../http/html.js'
import type { Admin } from '../access.js'
import { adminPage, hidden } from './frame.js'

export interface GrantRow {
  grantId: string
  sub: string
  email?: string | undefined
  clientId: string
  resourceId: string
  scopes: readonly string[]
  createdAt: number
  lastUsedAt?: number | undefined
  dpopBound: boolean
}

const when = (seconds: number) => `${new Date(seconds * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`

export function grantsPage(admin: Admin, options: { user: string; client: string; rows: readonly GrantRow[]; more: boolean; notice?: string }): Page {
  const rows = options.rows
    .map(
      (g) => `<tr data-grant="${escapeHtml(g.grantId)}"><td><code>${escapeHtml(g.sub)}</code>${g.email ? `<br><span class="muted">${escapeHtml(displayText(g.email, 120))}</span>` : ''}</td>
<td><code>${escapeHtml(displayText(g.clientId, 200))}</code></td><td>${escapeHtml(g.resourceId)}</td>
<td>${g.scopes.map((s) => `<code>${escapeHtml(s)}</code>`).join(' ') || '—'}</td>
<td>${when(g.createdAt)}</td><td>${g.lastUsedAt !== undefined ? when(g.lastUsedAt) : '—'}</td><td>${g.dpopBound ? 'DPoP' : '—'}</td>
<td><form method="post" action="/admin/grants/revoke">${hidden('csrf', admin.csrf)}${hidden('grant_id', g.grantId)}${hidden('user', options.user)}${hidden('client', options.client)}
<button type="submit" aria-label="Revoke the grant of ${escapeHtml(displayText(g.sub, 60))} to ${escapeHtml(displayText(g.clientId, 60))}">Revoke</button></form></td></tr>`,
    )
    .join('\n')
  const table =
    options.rows.length === 0
      ? '<p id="no-grants">No live grant matches.</p>'
      : `<table><thead><tr><th>Person</th><th>Client</th><th>Resource</th><th>Scopes</th><th>Since</th><th>Last used</th><th>Bound</th><th></th></tr></thead>
<tbody>${rows}</tbody></table>${options.more ? '<p class="muted">Only the first matches are shown; narrow the search.</p>' : ''}`
  return adminPage(
    'Grants',
    admin,
    `${options.notice ? `<p role="status" id="notice">${escapeHtml(options.notice)}</p>` : ''}
<form method="get" action="/admin/grants">
<label for="user">Person (subject or email contains)</label><input id="user" name="user" type="text" value="${escapeHtml(options.user)}">
<label for="client">Client (id contains)</label><input id="client" name="client" type="text" value="${escapeHtml(options.client)}">
<div class="actions"><button type="submit">Search</button></div></form>
<p class="muted">Revoking stops the grant at once: its refresh tokens are refused, and every replica refuses its access tokens within a second.</p>
${table}`,
  )
}
