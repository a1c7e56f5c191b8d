/**
 * The console's read-only pages about the deployment: signing keys (and how to rotate them),
 * resources with the configuration in effect (secrets masked), and health (store, rate limits).
 */
import { displayText, escapeHtml, type Page } from '../../../http/html.js'
import type { Admin } from '../access.js'
import { adminPage } from './frame.js'

export interface KeyRow {
  kid: string
  alg: string
  active: boolean
  /** Where the key is read from: `file …` or `env …`; the generated development key has none. */
  source?: string | undefined
}

const cell = (s: string) => `<td>${escapeHtml(displayText(s, 200))}</td>`

export function keysPage(admin: Admin, options: { keys: readonly KeyRow[]; generated: boolean; waitSeconds: number }): Page {
  const rows = options.keys
    .map((k) => `<tr data-kid="${escapeHtml(k.kid)}"><td><code>${escapeHtml(k.kid)}</code></td>${cell(k.alg)}${cell(k.active ? 'active: signs new tokens' : 'verify only: the next key before its switch, or a retired one until its tokens expire')}${cell(k.source ?? 'generated, kept in the store')}</tr>`)
    .join('\n')
  const generated = options.generated
    ? '<p class="warning">No signing key is configured: the gateway signs with a generated development key kept in its store. Configure keys (<code>gatehouse keys generate</code>) before production.</p>'
    : ''
  return adminPage(
    'Signing keys',
    admin,
    `${generated}<table><thead><tr><th>Key id</th><th>Algorithm</th><th>Role</th><th>Source</th></tr></thead><tbody>${rows}</tbody></table>
<h2>Rotating</h2>
<p>Keys are files or environment variables of the configuration (Secrets in Kubernetes); the gateway never writes them, so rotation happens where the configuration lives, not on this page:</p>
<ol>
<li>Run <code>gatehouse keys rotate --config FILE --out NEW_KEY_FILE</code>: it writes the new private key and prints the three configuration changes below, ready to paste.</li>
<li>Publish the new key as verify-only beside the active one, and roll out every replica.</li>
<li>Make the new key active and the old one verify-only, and roll out again.</li>
<li>After ${options.waitSeconds} seconds (access token lifetime and clock tolerance), remove the old key and roll out.</li>
</ol>`,
  )
}

export interface ResourceRow {
  id: string
  name: string
  uri: string
  upstream: string
  access: string
  rules: number
}

export function configPage(admin: Admin, options: { resources: readonly ResourceRow[]; yaml: string; warnings: readonly string[] }): Page {
  const rows = options.resources
    .map((r) => `<tr data-resource="${escapeHtml(r.id)}">${cell(r.id)}${cell(r.name)}<td><code>${escapeHtml(r.uri)}</code></td><td><code>${escapeHtml(r.upstream)}</code></td>${cell(r.access)}${cell(String(r.rules))}</tr>`)
    .join('\n')
  const warnings = options.warnings.length > 0 ? `<div class="warning"><p>Development settings in force:</p><ul>${options.warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join('')}</ul></div>` : ''
  return adminPage(
    'Resources and configuration',
    admin,
    `${warnings}<table><thead><tr><th>Id</th><th>Name</th><th>MCP endpoint</th><th>Upstream</th><th>Who may use it</th><th>Policy rules</th></tr></thead><tbody>${rows}</tbody></table>
<h2>Configuration in effect</h2>
<p class="muted">With every default filled in; credentials are shown as ****.</p>
<pre id="config">${escapeHtml(options.yaml)}</pre>`,
  )
}

export function healthPage(admin: Admin, options: { store: string; up: boolean; pingMs: number | undefined; error?: string; rateLimits: string }): Page {
  return adminPage(
    'Health',
    admin,
    `<dl>
<dt>Store</dt><dd>${escapeHtml(options.store)}</dd>
<dt>State</dt><dd id="store-state">${options.up ? `up (answered a ping in ${options.pingMs} ms)` : `DOWN${options.error ? `: ${escapeHtml(displayText(options.error, 200))}` : ''}`}</dd>
</dl>
<h2>Rate limits</h2>
<pre id="rate-limits">${escapeHtml(options.rateLimits)}</pre>
<p class="muted">Counts are in the store, shared by every replica; refusals appear in the audit trail as <code>rate_limited</code> and in the metrics.</p>`,
  )
}
