/**
 * A person at a browser, for flows where the pixels do not matter: keeps cookies, reads the
 * gateway's HTML forms and submits them as a browser would (form-urlencoded, no redirect
 * following across origins). The Chromium tests cover what the pages look like.
 */
export interface Form {
  action: string
  fields: Record<string, string>
}

export interface Visit {
  status: number
  headers: Headers
  html: string
  /** The Location header of a redirect, resolved. */
  location?: string
}

export class FormBrowser {
  readonly #cookies = new Map<string, string>()

  constructor(readonly origin: string) {}

  cookie(name: string): string | undefined {
    return this.#cookies.get(name)
  }

  async get(url: string): Promise<Visit> {
    return this.#visit(url, { method: 'GET' })
  }

  async post(path: string, fields: Record<string, string>, extraHeaders: Record<string, string> = {}): Promise<Visit> {
    return this.#visit(new URL(path, this.origin).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...extraHeaders },
      body: new URLSearchParams(fields).toString(),
    })
  }

  /** Submits the page's form, with the given fields filled in and an optional submit button value. */
  async submit(page: Visit, fill: Record<string, string> = {}): Promise<Visit> {
    const form = parseForm(page.html)
    return this.post(form.action, { ...form.fields, ...fill })
  }

  async #visit(url: string, init: RequestInit): Promise<Visit> {
    const sameOrigin = new URL(url).origin === this.origin
    const headers = new Headers(init.headers)
    if (sameOrigin && this.#cookies.size > 0) {
      headers.set('cookie', [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; '))
    }
    const res = await fetch(url, { ...init, headers, redirect: 'manual' })
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      if (value === '' || attrs.some((a) => /max-age=0$/i.test(a.trim()))) this.#cookies.delete(name)
      else this.#cookies.set(name, value)
    }
    const location = res.headers.get('location')
    return {
      status: res.status,
      headers: res.headers,
      html: await res.text(),
      ...(location !== null && { location: new URL(location, url).href }),
    }
  }
}

export function parseForm(html: string): Form {
  const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1]
  if (!action) throw new Error('no form on the page')
  const fields: Record<string, string> = {}
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[decode(m[1]!)] = decode(m[2]!)
  }
  return { action: decode(action), fields }
}

function decode(s: string): string {
  return s.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&')
}
