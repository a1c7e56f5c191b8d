/**
 * Parts the browser suites use on the gateway's person-facing pages: the response headers every
 * such page carries, that its inline style applied (so its CSP hash is right), keyboard focus
 * order, screenshots, a phone-sized dark context, the client's redirect target, a recorded page per
 * test and a form submission that waits for its answer.
 */
import { once } from 'node:events'
import { mkdirSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { join, relative } from 'node:path'
import type { Browser, Page, Response } from 'playwright-core'
import type { Test } from 'tap'
import { REPO_ROOT, repoPath } from '../helpers/repo.js'

const root = REPO_ROOT
const artifacts = repoPath('test-artifacts/browser')

/** Saves a full-page screenshot to test-artifacts/browser/<name>.png (gitignored) and names it in the output. */
export async function screenshot(t: Test, page: Page, name: string): Promise<void> {
  mkdirSync(artifacts, { recursive: true })
  const path = join(artifacts, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  t.comment(`screenshot: ${relative(root, path)}`)
}

/** The headers of every gateway HTML page: HTML, unframeable (BCP-14), nothing loaded (default-src 'none'), not stored, no referrer. */
export async function checkPageHeaders(t: Test, response: Response, what: string): Promise<void> {
  const headers = await response.allHeaders()
  t.match(headers['content-type'], /^text\/html; charset=utf-8/i, `${what}: HTML`)
  const csp = headers['content-security-policy'] ?? ''
  t.match(csp, /(^|;\s*)frame-ancestors 'none'(;|$)/, `${what}: CSP frame-ancestors 'none'`)
  t.match(csp, /(^|;\s*)default-src 'none'(;|$)/, `${what}: CSP default-src 'none'`)
  t.equal(headers['x-frame-options'], 'DENY', `${what}: X-Frame-Options DENY`)
  t.match(headers['cache-control'], /(^|,\s*)no-store(,|$)/, `${what}: Cache-Control no-store`)
  t.equal(headers['x-content-type-options'], 'nosniff', `${what}: nosniff`)
  t.equal(headers['referrer-policy'], 'same-origin', `${what}: no referrer to other sites`)
}

/** The page's inline style applied: its primary button has the accent colour, so the CSP style hash is right. */
export async function checkStyleApplied(t: Test, page: Page): Promise<void> {
  const accent = await page.evaluate<string>("getComputedStyle(document.querySelector('button.primary')).backgroundColor")
  t.equal(accent, 'rgb(11, 87, 208)', 'the inline style applied (allowed by the page CSP hash)')
}

/** Presses Tab `presses` times; what `focused` says of the focused element after each press. */
export async function tabOrder(page: Page, presses: number, focused: (page: Page) => Promise<string>): Promise<string[]> {
  const order: string[] = []
  for (let i = 0; i < presses; i++) {
    await page.keyboard.press('Tab')
    order.push(await focused(page))
  }
  return order
}

/** A phone-sized screen in the dark colour scheme. */
export const DARK_PHONE: Parameters<Browser['newContext']>[0] = {
  colorScheme: 'dark',
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
}

export interface CallbackServer {
  origin: string
  /** Every request the redirect target received, in order. */
  received: { pathname: string; query: URLSearchParams }[]
}

/** The client's redirect target on a loopback port: records the query, answers "done". */
export async function startCallbackServer(t: Test): Promise<CallbackServer> {
  const received: CallbackServer['received'] = []
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    received.push({ pathname: url.pathname, query: url.searchParams })
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('done')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const { port } = server.address() as { port: number }
  return { origin: `http://127.0.0.1:${port}`, received }
}

/** Waits for the browser to arrive at the redirect target's /callback; the query it received there after `before` requests. */
export async function arrival(t: Test, page: Page, callback: CallbackServer, before: number): Promise<URLSearchParams> {
  await page.waitForURL((url) => url.origin === callback.origin)
  t.equal(new URL(page.url()).pathname, '/callback', 'back at the registered redirect URI')
  t.equal(await page.locator('body').innerText(), 'done', 'the redirect target answered')
  const received = callback.received.slice(before).filter((r) => r.pathname === '/callback')
  t.equal(received.length, 1, 'the redirect target was called once')
  return received[0]?.query ?? new URLSearchParams()
}

/**
 * A fresh browser context (no cookies) and page for one test, closed at its teardown. `foreign()`
 * lists what it loaded besides the gateway's own documents, and every console error except a
 * Chromium note about a document answered with one of `expectedStatuses` (a refusal on purpose).
 */
export async function recordedPage(
  t: Test,
  browser: Browser,
  gatewayOrigin: string,
  options: { width: number; expectedStatuses: readonly number[] },
): Promise<{ page: Page; foreign: () => string[] }> {
  const context = await browser.newContext({ viewport: { width: options.width, height: 900 } })
  context.setDefaultTimeout(10_000)
  t.teardown(() => context.close())
  const requests: { url: string; type: string }[] = []
  const errors: string[] = []
  const expected = new RegExp(`status of (${options.expectedStatuses.join('|')})`)
  context.on('request', (r) => requests.push({ url: r.url(), type: r.resourceType() }))
  context.on('console', (m) => m.type() === 'error' && !expected.test(m.text()) && errors.push(m.text()))
  const page = await context.newPage()
  return {
    page,
    foreign: () => [
      ...requests.filter((r) => r.type !== 'document' || new URL(r.url).origin !== gatewayOrigin).map((r) => `${r.type} ${r.url}`),
      ...errors,
    ],
  }
}

/** Submits a form by clicking `button`; the gateway's answer to the POST to `path`, once its page loaded. */
export async function clicking(page: Page, path: string, button: ReturnType<Page['getByRole']>): Promise<Response> {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === path),
    page.waitForEvent('load'),
    button.click(),
  ])
  return response
}
