/**
 * Where the account page's sign-in (password or the company's IdP) may return to besides
 * /account: the operator console only, as a same-origin path of the console's own shape. Anything
 * else (an absolute URL, `//host`, a backslash, an encoded character, a query) is ignored, so
 * `next` can never be an open redirect. A leaf: the account page and the IdP callback both ask it.
 */
const CONSOLE_PATH = /^\/admin(?:\/[a-z]+(?:\/[a-z]+)?)?$/

export function consoleReturnPath(next: string | undefined): string | undefined {
  return next !== undefined && CONSOLE_PATH.test(next) ? next : undefined
}
