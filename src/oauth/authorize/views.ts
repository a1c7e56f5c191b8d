/**
 * The login and consent pages of the authorization server. Client names are untrusted text
 * (SEC-25): escaped and cleaned, and always shown beside what the gateway verified (SEC-24).
 */
import { displayText, escapeHtml, page, type Page } from '../../http/html.js'

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

export interface ClientFacts {
  client: ClientSummary
  resourceName: string
  resourceUri: string
  scopes: readonly ScopeLine[]
  loopbackOnly: boolean
}

/** What the person is asked to allow: the verified facts beside the self-asserted name (SEC-24, MCPS-02). */
function clientFacts(options: ClientFacts): string {
  const { client } = options
  const redirect = new URL(client.redirectUri)
  const scopeItems = options.scopes
    .map(
      (s) =>
        `<li${s.isNew ? ' class="new"' : ''}><code>${escapeHtml(s.name)}</code>${s.description ? ` — ${escapeHtml(s.description)}` : ''}${s.isNew ? '<span class="badge">new</span>' : ''}</li>`,
    )
    .join('')
  return `<dl>
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
}`
}

export function consentPage(
  options: ClientFacts & { user: string; fields: Record<string, string>; formTargets: readonly string[] },
): Page {
  const { client } = options
  return page(
    'Allow access',
    `<h1>Allow <span>${escapeHtml(displayText(client.name))}</span> to use ${escapeHtml(options.resourceName)}?</h1>
<p class="muted">Signed in as ${escapeHtml(displayText(options.user, 120))}</p>
${clientFacts(options)}
<form method="post" action="/oauth/authorize/consent">${hidden(options.fields)}
<div class="actions"><button class="primary" type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></div></form>`,
    options.formTargets,
  )
}

/**
 * The consent page a person sees before signing in at an upstream IdP (MCPA-80, MCPS-01): the
 * client's facts and one "Allow and continue with <IdP>" button per provider. Only its POST
 * starts the upstream login; nothing is remembered or set before it (MCPS-06). With static
 * users too, a password form follows (password users then see the usual consent page).
 */
export function upstreamConsentPage(
  options: ClientFacts & {
    providers: readonly { id: string; name: string }[]
    passwordLogin: boolean
    fields: Record<string, string>
    error?: string
    username?: string
    formTargets: readonly string[]
  },
): Page {
  const { client } = options
  const buttons = options.providers
    .map(
      (p, i) =>
        `<button${i === 0 ? ' class="primary"' : ''} type="submit" name="provider" value="${escapeHtml(p.id)}">Allow and continue with ${escapeHtml(p.name)}</button>`,
    )
    .join('\n')
  const password = options.passwordLogin
    ? `<p class="muted">Or, with a gateway account, sign in first; you will be asked again before anything is allowed.</p>
${options.error ? `<p class="error" id="login-error" role="alert">${escapeHtml(options.error)}</p>` : ''}
<form method="post" action="/oauth/authorize/login">${hidden(options.fields)}
<label for="username">Username</label><input id="username" name="username" type="text" autocomplete="username" required value="${escapeHtml(options.username ?? '')}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required${options.error ? ' aria-invalid="true" aria-describedby="login-error"' : ''}>
<div class="actions"><button type="submit">Sign in with password</button></div></form>`
    : ''
  return page(
    'Allow access',
    `<h1>Allow <span>${escapeHtml(displayText(client.name))}</span> to use ${escapeHtml(options.resourceName)}?</h1>
<p class="muted">You will sign in next; your answer is kept for this application.</p>
${clientFacts(options)}
<form method="post" action="/oauth/authorize/upstream">${hidden(options.fields)}
<div class="actions">${buttons}
<button type="submit" name="decision" value="deny">Deny</button></div></form>
${password}`,
    options.formTargets,
  )
}

/**
 * The end of a flow that cannot give the application what it asked for: the reason in plain
 * words, and a link that hands the OAuth error back to the (verified) redirect URI.
 */
export function returnPage(options: { title: string; message: string; returnUrl?: string }): Page {
  return page(
    options.title,
    `<h1>${escapeHtml(options.title)}</h1><p role="alert">${escapeHtml(options.message)}</p>
${
  options.returnUrl
    ? `<div class="actions"><a class="button" id="return" href="${escapeHtml(options.returnUrl)}">Return to the application</a></div>`
    : '<p class="muted">You can close this window. If you were connecting an application, start again from it.</p>'
}`,
  )
}

/** Sign-out: a confirmation form (POST, same origin only), then the result. */
export function logoutPage(options: { signedIn: boolean; done: boolean }): Page {
  if (options.done) return page('Signed out', '<h1>You are signed out</h1><p class="muted">You can close this window.</p>')
  return page(
    'Sign out',
    `<h1>Sign out of the gateway?</h1>
<p>${options.signedIn ? 'Applications you allowed keep their access until it expires or you revoke it on <a href="/account">your account page</a>; you will sign in again before allowing another.' : 'You are not signed in.'}</p>
<form method="post" action="/oauth/logout"><div class="actions"><button class="primary" type="submit">Sign out</button></div></form>`,
  )
}
