/**
 * The account page in a real browser (headless Chromium): alice signs in on it, sees the
 * applications she allowed, revokes one (its token is refused at once, §11.4 REV-01) and the
 * rest; bob, signed in beside her, edits his own page's form to name alice's grant and is
 * refused. Plus what only a browser shows: headers, no subresource, the style passing the CSP,
 * labels, one h1.
 */
import type { Browser, Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { chromiumForTests } from '../helpers/chromium.js'
import { accountGateway, claims, mcpCall, PASSWORD, Person } from '../login/account-harness.js'
import { checkPageHeaders, checkStyleApplied, clicking, recordedPage, screenshot } from './page-checks.js'

const browser = await chromiumForTests(t)
if (browser) await suite(browser)

async function suite(browser: Browser): Promise<void> {
  const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
  t.teardown(() => upstream.close())
  const gw = await accountGateway(t, upstream.url)

  const newPage = (t: Test) => recordedPage(t, browser, gw.origin, { width: 1000, expectedStatuses: [401, 404] })

  async function signIn(page: Page, username: string): Promise<void> {
    const shown = await page.goto(`${gw.origin}/account`)
    await checkPageHeaders(t, shown!, 'the sign-in page')
    await checkStyleApplied(t, page)
    await page.getByLabel('Username', { exact: true }).fill(username)
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD)
    const answer = await clicking(page, '/account/login', page.getByRole('button', { name: 'Sign in' }))
    t.equal(answer.status(), 303, `${username} signed in`)
  }

  t.test('alice signs in, sees her applications, revokes one and then all; bob cannot touch hers', async (t) => {
    const person = new Person(gw, 'alice')
    const notes = await person.connect('notes-app', 'mcp admin')
    const mail = await person.connect('mail-app')
    const bobsBrowser = new Person(gw, 'bob')
    await bobsBrowser.connect('mail-app')

    const alice = await newPage(t)
    await signIn(alice.page, 'alice')
    t.equal(new URL(alice.page.url()).pathname, '/account')
    t.equal(await alice.page.locator('h1').count(), 1, 'one h1')
    t.equal(await alice.page.locator('li.grant').count(), 2, 'two applications')
    const notesItem = alice.page.locator(`li[data-grant="${claims(notes.access_token).grant_id}"]`)
    t.match(await notesItem.innerText(), /The notes-app[\s\S]*registered by the operator[\s\S]*mcp admin/)
    await screenshot(t, alice.page, 'account-list')

    const bob = await newPage(t)
    await signIn(bob.page, 'bob')
    // Bob rewrites his own page's form to name alice's grant: his session, his CSRF token.
    await bob.page.locator('li.grant input[name=grant_id]').first().evaluate((input, id) => ((input as unknown as { value: string }).value = id), claims(notes.access_token).grant_id)
    const refused = await clicking(bob.page, '/account/revoke', bob.page.getByRole('button', { name: 'Revoke access' }).first())
    t.equal(refused.status(), 404, 'refused, as if it did not exist')
    t.equal((await mcpCall(gw, notes.access_token)).status, 200, 'alice\'s grant is untouched')

    const revoked = await clicking(alice.page, '/account/revoke', notesItem.getByRole('button', { name: 'Revoke access' }))
    t.equal(revoked.status(), 303)
    t.match(await alice.page.getByRole('status').innerText(), /Access revoked \(1\)/)
    t.equal(await alice.page.locator('li.grant').count(), 1)
    t.equal((await mcpCall(gw, notes.access_token)).status, 401, 'its token is refused at once')
    t.equal((await mcpCall(gw, mail.access_token)).status, 200, 'the other goes on')

    await clicking(alice.page, '/account/revoke', alice.page.getByRole('button', { name: /Revoke all/ }))
    t.ok(await alice.page.locator('#no-grants').isVisible(), 'nothing left')
    t.equal((await mcpCall(gw, mail.access_token)).status, 401)
    t.same(alice.foreign(), [], 'only gateway documents were loaded; no console error (a CSP violation would show)')
    t.same(bob.foreign(), [])
  })
}
