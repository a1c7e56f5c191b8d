/**
 * Headless Chromium for tests of the pages a person sees, driven by playwright-core (which
 * never downloads a browser of its own): Debian's /usr/bin/chromium, or GATEHOUSE_CHROMIUM.
 *
 * A browser suite calls chromiumForTests(t) first thing (before any assertion or subtest) and
 * returns early on undefined: without a browser the test is skipped with the reason, or fails
 * when GATEHOUSE_REQUIRE_CHROMIUM=1 (CI, where a silently skipped browser suite would hide
 * regressions). `.ci/install-chromium` installs it.
 */
import { accessSync, constants } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'
import type { Test } from 'tap'

const requireChromium = process.env.GATEHOUSE_REQUIRE_CHROMIUM === '1'

/** Flags for a quiet, reproducible headless run inside containers and CI. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
] as const

/**
 * No host name but localhost resolves: a page that references a public host (oidc-provider's
 * development pages import a web font) cannot make the browser look it up or reach it.
 */
export const NO_NAME_RESOLUTION = '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1'

/** Skips the test with `<reason>: browser suites skipped`, or fails it when Chromium is required. */
export function chromiumUnavailable(t: Test, reason: string): void {
  if (requireChromium) t.fail(`Chromium is required (GATEHOUSE_REQUIRE_CHROMIUM=1) but ${reason}`)
  else t.plan(0, `${reason}: browser suites skipped (install it with .ci/install-chromium)`)
}

/** The Chromium executable to use, or undefined when it is not there. */
export function chromiumPath(): string | undefined {
  const path = process.env.GATEHOUSE_CHROMIUM || '/usr/bin/chromium'
  try {
    accessSync(path, constants.X_OK)
    return path
  } catch {
    return undefined
  }
}

/**
 * A freshly launched headless Chromium (its own temporary profile, removed on close), closed
 * at teardown; undefined (test skipped or failed as above) when no executable is found. A
 * browser that is there but does not start is an error, not a skip. `extraArgs` add flags
 * (e.g. NO_NAME_RESOLUTION for pages of other parties that reference public hosts).
 */
export async function chromiumForTests(t: Test, options: { extraArgs?: readonly string[] } = {}): Promise<Browser | undefined> {
  const executablePath = chromiumPath()
  if (!executablePath) {
    const where = process.env.GATEHOUSE_CHROMIUM ? `GATEHOUSE_CHROMIUM=${process.env.GATEHOUSE_CHROMIUM}` : '/usr/bin/chromium'
    chromiumUnavailable(t, `no Chromium executable at ${where}`)
    return undefined
  }
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [...CHROMIUM_ARGS, ...(options.extraArgs ?? [])],
    timeout: 30_000,
  })
  t.teardown(() => browser.close())
  return browser
}
