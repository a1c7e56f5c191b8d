/**
 * The operator console in a real browser (headless Chromium), without any script of its own:
 * alice, whom admin.access names, follows the console's "Sign in with your account" link, signs
 * in on the account page and comes back to /admin; she finds bob's grants, revokes one (its
 * token is refused at once) and reads the configuration page. Bob, signed in beside her, is
 * refused (403) and sees nothing of the console. An operator with the admin token signs in on
 * the console's own form. Plus the page headers, the style passing the CSP, no subresource.
 */
import type { Browser, Page, Response } from 'playwright-core'
import t, { type Test } from 'tap'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { chromiumForTests } from '../helpers/chromium.js'
import { claims, mcpCall, PASSWORD, Person } from '../login/account-harness.js'
import { ADMIN_TOKEN, consoleGateway } from '../admin/harness.js'
import { checkPageHeaders, checkStyleApplied, clicking, recordedPage, screenshot } from './page-checks.js'

const browser = await chromiumForTests(t)
if (browser) await suite(browser)

async function suite(browser: Browser): Promise<void> {
  const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
  t.teardown(() => upstream.close())
  const gw = await consoleGateway(t, upstream.url)

  const newPage = (t: Test) => recordedPage(t, browser, gw.origin, { width: 1200, expectedStatuses: [401, 403] })

  /** From the console's sign-in page, through the account page's sign-in, back to the console. */
  async function signInAsPerson(t: Test, page: Page, username: string): Promise<Response> {
    const door = await page.goto(`${gw.origin}/admin`)
    t.equal(door!.status(), 401, 'the console\'s sign-in page')
    await checkPageHeaders(t, door!, 'the console sign-in page')
    await checkStyleApplied(t, page)
    await Promise.all([page.waitForEvent('load'), page.getByRole('link', { name: 'Sign in with your account' }).click()])
    await page.getByLabel('Username', { exact: true }).fill(username)
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD)
    const [console] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'GET' && new URL(r.url()).pathname === '/admin'),
      page.getByRole('button', { name: 'Sign in', exact: true }).click(),
    ])
    await page.waitForLoadState('load')
    return console
  }

  t.test('alice signs in as herself, finds bob\'s grants and revokes one; bob is refused', async (t) => {
    const bobPerson = new Person(gw, 'bob')
    const notes = await bobPerson.connect('notes-app')
    const mail = await bobPerson.connect('mail-app')

    const alice = await newPage(t)
    const entered = await signInAsPerson(t, alice.page, 'alice')
    t.equal(entered.status(), 200, 'back at the console')
    await checkPageHeaders(t, entered, 'the console')
    t.equal(await alice.page.locator('h1').innerText(), 'Operator console')
    await alice.page.getByRole('navigation').getByRole('link', { name: 'Grants' }).click()
    await alice.page.getByLabel('Client (id contains)').fill('notes')
    await Promise.all([alice.page.waitForEvent('load'), alice.page.getByRole('button', { name: 'Search' }).click()])
    t.equal(await alice.page.locator('tr[data-grant]').count(), 1, 'the search by client finds one')
    await screenshot(t, alice.page, 'admin-grants')
    const revoked = await clicking(alice.page, '/admin/grants/revoke', alice.page.getByRole('button', { name: /Revoke the grant of static:bob to notes-app/ }))
    t.equal(revoked.status(), 303)
    t.match(await alice.page.getByRole('status').innerText(), new RegExp(`Grant ${claims(notes.access_token).grant_id} revoked`))
    t.equal(await alice.page.getByLabel('Client (id contains)').inputValue(), 'notes', 'the same search again')
    t.equal((await mcpCall(gw, notes.access_token)).status, 401, 'refused at once')
    t.equal((await mcpCall(gw, mail.access_token)).status, 200, 'the other goes on')
    t.match(gw.logs.find((l) => l.audit === 'grant.revoked'), { by: 'operator', actor: 'static:alice', sub: 'static:bob', clientId: 'notes-app' })

    await alice.page.getByRole('navigation').getByRole('link', { name: 'Resources and configuration' }).click()
    t.match(await alice.page.locator('#config').innerText(), /value: "?\*\*\*\*"?/, 'the upstream secret masked')
    t.notMatch(await alice.page.content(), /upstream-secret-value/)
    await screenshot(t, alice.page, 'admin-config')

    const bob = await newPage(t)
    const refused = await signInAsPerson(t, bob.page, 'bob')
    t.equal(refused.status(), 403, 'bob is no operator')
    t.match(await bob.page.getByRole('alert').innerText(), /may not use the operator console/)
    t.equal(await bob.page.getByRole('navigation').count(), 0, 'no console navigation')
    t.notMatch(await bob.page.content(), /data-grant|static:alice|notes-app/, 'nothing of the console')
    t.equal((await bob.page.goto(`${gw.origin}/admin/grants`))!.status(), 403)
    t.same(alice.foreign(), [], 'only gateway documents were loaded; no console error (a CSP violation would show)')
    t.same(bob.foreign(), [])
  })

  t.test('an operator signs in with the admin token and reads health, then signs out', async (t) => {
    const operator = await newPage(t)
    await operator.page.goto(`${gw.origin}/admin`)
    await operator.page.getByLabel('Admin token').fill(ADMIN_TOKEN)
    const signedIn = await clicking(operator.page, '/admin/login', operator.page.getByRole('button', { name: 'Sign in with the token' }))
    t.equal(signedIn.status(), 303)
    await operator.page.getByRole('navigation').getByRole('link', { name: 'Health' }).click()
    t.match(await operator.page.locator('#store-state').innerText(), /^up/)
    await clicking(operator.page, '/admin/logout', operator.page.getByRole('button', { name: 'Sign out' }))
    t.ok(await operator.page.getByLabel('Admin token').isVisible(), 'signed out: the sign-in page again')
    t.same(operator.foreign(), [])
  })
}
