/**
 * The account page: the applications a person allowed, each with what the gateway verified
 * about it beside its self-chosen name (SEC-24), every value escaped and cleaned (SEC-25).
 */
import { displayText, escapeHtml, page, type Page } from '../../http/html.js'

export interface AccessLine {
  grantId: string
  /** The client's own name, or its client-ID host when the gateway keeps no name for it. */
  clientName: string
  /** What the gateway verified: pre-registered, registered itself, or the client-ID host (CIMD). */
  verifiedAs: string
  clientId: string
  resourceName: string
  resourceUri: string
  scopes: readonly string[]
  /** Seconds since the epoch. */
  createdAt: number
  lastUsedAt?: number | undefined
  dpopBound: boolean
}

const hidden = (name: string, value: string) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`

/** A date a person reads, in UTC so every replica prints the same: `2026-12-06 23:59 UTC`. */
export function whenText(seconds: number): string {
  return `${new Date(seconds * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`
}

export function accountPage(options: { user: string; lines: readonly AccessLine[]; csrf: string; notice?: string }): Page {
  const items = options.lines
    .map(
      (line) => `<li class="grant" data-grant="${escapeHtml(line.grantId)}">
<h2>${escapeHtml(displayText(line.clientName))}</h2>
<dl>
<dt>Verified</dt><dd>${escapeHtml(line.verifiedAs)}</dd>
<dt>Client ID</dt><dd><code>${escapeHtml(line.clientId)}</code></dd>
<dt>MCP server</dt><dd>${escapeHtml(line.resourceName)} <span class="muted">${escapeHtml(line.resourceUri)}</span></dd>
<dt>Allowed</dt><dd>${line.scopes.length > 0 ? line.scopes.map((s) => `<code>${escapeHtml(s)}</code>`).join(' ') : 'calls as you'}</dd>
<dt>Since</dt><dd>${whenText(line.createdAt)}</dd>
<dt>Last used</dt><dd>${line.lastUsedAt !== undefined ? whenText(line.lastUsedAt) : 'not refreshed since it was given'}</dd>
<dt>Key-bound</dt><dd>${line.dpopBound ? 'yes: its tokens work only with the key it holds (DPoP)' : 'no'}</dd>
</dl>
<form method="post" action="/account/revoke">${hidden('csrf', options.csrf)}${hidden('grant_id', line.grantId)}
<div class="actions"><button type="submit" aria-label="Revoke access of ${escapeHtml(displayText(line.clientName))}">Revoke access</button></div></form>
</li>`,
    )
    .join('\n')
  const list =
    options.lines.length === 0
      ? '<p id="no-grants">No application has access on your behalf.</p>'
      : `<ul class="grants">${items}</ul>
<form method="post" action="/account/revoke">${hidden('csrf', options.csrf)}${hidden('all', 'yes')}
<div class="actions"><button type="submit">Revoke all (${options.lines.length})</button></div></form>`
  return page(
    'Your connected applications',
    `<h1>Applications with access</h1>
<p class="muted">Signed in as ${escapeHtml(displayText(options.user, 120))} · <a href="/oauth/logout">Sign out</a></p>
${options.notice ? `<p role="status" id="notice">${escapeHtml(options.notice)}</p>` : ''}
<p>These applications may call MCP servers as you. Revoking one stops it at once: its tokens are refused and it must ask you again.</p>
${list}`,
  )
}

export function accountSignInPage(options: {
  csrf: string
  passwordLogin: boolean
  providers: readonly { id: string; name: string }[]
  /** Where each provider's sign-in form redirects to (the page's CSP form-action). */
  formTargets: readonly string[]
  error?: string
  username?: string
  /** A console path (../return-path.ts) either sign-in returns to. */
  next?: string
}): Page {
  const buttons = options.providers
    .map((p) => `<button type="submit" name="provider" value="${escapeHtml(p.id)}">Sign in with ${escapeHtml(p.name)}</button>`)
    .join('\n')
  const next = options.next !== undefined ? hidden('next', options.next) : ''
  const upstream = options.providers.length > 0 ? `<form method="post" action="/account/upstream">${hidden('csrf', options.csrf)}${next}<div class="actions">${buttons}</div></form>` : ''
  const password = options.passwordLogin
    ? `${options.error ? `<p class="error" id="login-error" role="alert">${escapeHtml(options.error)}</p>` : ''}
<form method="post" action="/account/login">${hidden('csrf', options.csrf)}${next}
<label for="username">Username</label><input id="username" name="username" type="text" autocomplete="username" required value="${escapeHtml(options.username ?? '')}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required${options.error ? ' aria-invalid="true" aria-describedby="login-error"' : ''}>
<div class="actions"><button class="primary" type="submit">Sign in</button></div></form>`
    : ''
  const body =
    options.passwordLogin || options.providers.length > 0
      ? `<p>Sign in to see the applications that may act on your behalf, and to revoke them.</p>${upstream}${password}`
      : '<p>This gateway has no sign-in configured.</p>'
  return page('Your connected applications', `<h1>Your connected applications</h1>\n${body}`, options.formTargets)
}
