/**
 * The operator console's frame: navigation, who is signed in, and the pages without data (sign-in,
 * refusal, overview). Server-rendered under the gateway's strict CSP, no script; every value
 * escaped (SEC-25).
 */
import { displayText, escapeHtml, page, type Page } from '../../../http/html.js'
import type { Admin } from '../access.js'

export const hidden = (name: string, value: string) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`

const SECTIONS = [
  ['/admin/grants', 'Grants'],
  ['/admin/clients', 'Clients'],
  ['/admin/cimd', 'CIMD inspect'],
  ['/admin/keys', 'Signing keys'],
  ['/admin/config', 'Resources and configuration'],
  ['/admin/health', 'Health'],
] as const

/** A console page: the sections, who is signed in and how to leave, then the body. */
export function adminPage(title: string, admin: Admin, body: string): Page {
  const nav = SECTIONS.map(([href, label]) => `<a href="${href}"${label === title ? ' aria-current="page"' : ''}>${label}</a>`).join('\n')
  const leave =
    admin.kind === 'token'
      ? `<form method="post" action="/admin/logout">${hidden('csrf', admin.csrf)}<button type="submit">Sign out</button></form>`
      : '<a href="/oauth/logout">Sign out</a>'
  return page(
    `${title} · Operator console`,
    `<nav aria-label="Console"><a href="/admin">Console</a>\n${nav}</nav>
<h1>${escapeHtml(title)}</h1>
<div class="muted">Signed in as ${escapeHtml(displayText(admin.display, 120))} · ${leave}</div>
${body}`,
    [],
    'wide',
  )
}

export function overviewPage(admin: Admin): Page {
  const items = SECTIONS.map(([href, label]) => `<li><a href="${href}">${label}</a></li>`).join('\n')
  return adminPage('Operator console', admin, `<p>Every action here is recorded in the audit trail with your identity.</p><ul>${items}</ul>`)
}

export function adminSignInPage(options: { csrf: string; personSignIn: boolean; tokenSignIn: boolean; error?: string }): Page {
  const person = options.personSignIn
    ? '<p><a class="button" href="/account?next=/admin">Sign in with your account</a></p><p class="muted">Operators named by the gateway\'s admin access rules sign in as themselves.</p>'
    : ''
  const token = options.tokenSignIn
    ? `${options.error ? `<p class="error" id="login-error" role="alert">${escapeHtml(options.error)}</p>` : ''}
<form method="post" action="/admin/login">${hidden('csrf', options.csrf)}
<label for="token">Admin token</label><input id="token" name="token" type="password" autocomplete="off" required${options.error ? ' aria-invalid="true" aria-describedby="login-error"' : ''}>
<div class="actions"><button class="primary" type="submit">Sign in with the token</button></div></form>`
    : ''
  return page('Operator console', `<h1>Operator console</h1>\n${person}${token}`)
}

/** A signed-in person the rules do not name: nothing of the console, only how to switch. */
export function notAdminPage(options: { display: string; tokenSignIn: boolean; csrf: string }): Page {
  const token = options.tokenSignIn
    ? `<form method="post" action="/admin/login">${hidden('csrf', options.csrf)}
<label for="token">Admin token</label><input id="token" name="token" type="password" autocomplete="off" required>
<div class="actions"><button type="submit">Sign in with the token</button></div></form>`
    : ''
  return page(
    'Operator console',
    `<h1>Not an operator</h1>
<p role="alert">${escapeHtml(displayText(options.display, 120))} may not use the operator console.</p>
<p class="muted"><a href="/oauth/logout">Sign out</a> to sign in as someone else.</p>${token}`,
  )
}
