/**
 * One gateway with the operator console on: alice is an operator (admin.access names her subject),
 * bob is not; an admin token opens it too. People connect clients as on the account page
 * (account-harness.ts). Shared by the inject-level and Chromium tests of the console.
 */
import { createHash } from 'node:crypto'
import type { Test } from 'tap'
import { FormBrowser, type Visit } from '../helpers/form-browser.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { hashPassword } from '../../src/login/passwords.js'
import { PASSWORD } from '../login/account-harness.js'

export const ADMIN_TOKEN = 'console-token-0123456789abcdef0123456789abcdef'
const passwordHash = await hashPassword(PASSWORD)

export async function consoleGateway(t: Test, upstreamUrl: string, more: Record<string, unknown> = {}, store?: Record<string, unknown>): Promise<TestGateway> {
  return startTestGateway(t, {
    ...(store && { store }),
    resources: [{ upstream: upstreamUrl, scopes: [{ name: 'mcp' }, { name: 'admin' }], upstreamAuth: { header: { name: 'x-api-key', value: 'upstream-secret-value' } } }],
    config: {
      login: { static: { users: [{ username: 'alice', passwordHash, email: 'alice@example.com' }, { username: 'bob', passwordHash }] } },
      clients: ['notes-app', 'mail-app'].map((id) => ({ clientId: id, name: `The ${id}`, redirectUris: ['http://127.0.0.1/callback'] })),
      admin: {
        enabled: true,
        access: { subjects: ['static:alice'] },
        tokenSha256: createHash('sha256').update(ADMIN_TOKEN).digest('hex'),
      },
      ...more,
    },
  })
}

/** Signs a person in at /account with `next=/admin`; the answer of the password form. */
export async function signInForConsole(browser: FormBrowser, username: string, next = '/admin'): Promise<Visit> {
  const page = await browser.get(`${browser.origin}/account?next=${encodeURIComponent(next)}`)
  return browser.post('/account/login', { ...hiddenFields(page.html, '/account/login'), username, password: PASSWORD }, { origin: browser.origin })
}

/** Signs in at /admin with a token; the answer of the token form. */
export async function signInWithToken(browser: FormBrowser, token: string): Promise<Visit> {
  const page = await browser.get(`${browser.origin}/admin`)
  return browser.post('/admin/login', { ...hiddenFields(page.html, '/admin/login'), token }, { origin: browser.origin })
}

/** The hidden fields of the form posting to `action`. */
export function hiddenFields(html: string, action: string): Record<string, string> {
  const form = new RegExp(`<form[^>]*action="${action}"[^>]*>([\\s\\S]*?)</form>`).exec(html)
  if (!form) throw new Error(`no form to ${action} on the page: ${html.slice(0, 300)}`)
  return Object.fromEntries([...form[1]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)))]))
}

export const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)![1]!
