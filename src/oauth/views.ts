/**
 * The login and consent pages of the authorization server. Client names are untrusted text
 * (SEC-25): escaped and cleaned, and always shown beside what the gateway verified (SEC-24).
 */
import { displayText, escapeHtml, page, type Page } from '../http/html.js'

const hidden = (fields: Record<string, string>) =>
  Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('')

export interface ClientSummary {
  name: string
  clientId: string
  /** What is verified about the client: its registration source or client-id host. */
  verifiedAs: string
  redirectUri: string
}

export function loginPage(options: {
  client: ClientSummary
  resourceName: string
  fields: Record<string, string>
  error?: string
  username?: string
  formTargets: readonly string[]
}): Page {
  const { client } = options
  return page(
    'Sign in',
    `<h1>Sign in to continue</h1>
<p><strong>${escapeHtml(displayText(client.name))}</strong> <span class="muted">(${escapeHtml(client.verifiedAs)})</span> wants to use <strong>${escapeHtml(options.resourceName)}</strong> on your behalf.</p>
${options.error ? `<p class="error" id="login-error" role="alert">${escapeHtml(options.error)}</p>` : ''}
<form method="post" action="/oauth/authorize/login">${hidden(options.fields)}
<label for="username">Username</label><input id="username" name="username" type="text" autocomplete="username" required${options.username ? '' : ' autofocus'} value="${escapeHtml(options.username ?? '')}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required${options.username ? ' autofocus' : ''}${options.error ? ' aria-invalid="true" aria-describedby="login-error"' : ''}>
<div class="actions"><button class="primary" type="submit">Sign in</button></div></form>`,
    options.formTargets,
  )
}

export interface ScopeLine {
  name: string
  description: string
  /** Not granted to this client before: shown as new (step-up). */
  isNew: boolean
}

export function consentPage(options: {
  client: ClientSummary
  user: string
  resourceName: string
  resourceUri: string
  scopes: readonly ScopeLine[]
  loopbackOnly: boolean
  fields: Record<string, string>
  formTargets: readonly string[]
}): Page {
  const { client } = options
  const redirect = new URL(client.redirectUri)
  const scopeItems = options.scopes
    .map(
      (s) =>
        `<li${s.isNew ? ' class="new"' : ''}><code>${escapeHtml(s.name)}</code>${s.description ? ` — ${escapeHtml(s.description)}` : ''}${s.isNew ? '<span class="badge">new</span>' : ''}</li>`,
    )
    .join('')
  return page(
    'Allow access',
    `<h1>Allow <span>${escapeHtml(displayText(client.name))}</span> to use ${escapeHtml(options.resourceName)}?</h1>
<p class="muted">Signed in as ${escapeHtml(options.user)}</p>
<dl>
<dt>Application</dt><dd>${escapeHtml(displayText(client.name))}</dd>
<dt>Verified</dt><dd>${escapeHtml(client.verifiedAs)}</dd>
<dt>Client ID</dt><dd><code>${escapeHtml(client.clientId)}</code></dd>
<dt>Sends you back to</dt><dd><strong>${escapeHtml(redirect.origin === 'null' ? redirect.protocol : redirect.origin)}</strong></dd>
<dt>MCP server</dt><dd>${escapeHtml(options.resourceUri)}</dd>
</dl>
<p>It will be able to:</p><ul class="scopes">${scopeItems || '<li>call the MCP server as you</li>'}</ul>
${
  options.loopbackOnly
    ? `<div class="warning" role="note"><strong>This application runs on your computer.</strong> Access is handed to a program listening on ${escapeHtml(redirect.host)}. Only continue if you started this connection yourself.</div>`
    : ''
}
<form method="post" action="/oauth/authorize/consent">${hidden(options.fields)}
<div class="actions"><button class="primary" type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></div></form>`,
    options.formTargets,
  )
}

