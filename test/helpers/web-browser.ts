/**
 * A person at a browser that visits more than one site (the gateway and an upstream IdP):
 * cookies kept per host name as browsers do (not per port), redirects not followed unless
 * asked, https to servers signed by a test CA. Pages are read as HTML forms, like FormBrowser.
 */
import { Agent, fetch as undiciFetch } from 'undici'
import { parseForm } from './form-browser.js'

export interface WebVisit {
  url: string
  status: number
  headers: Headers
  html: string
  /** The Location header of a redirect, resolved. */
  location?: string
}

export class WebBrowser {
  readonly #jars = new Map<string, Map<string, string>>()
  readonly #dispatcher: Agent | undefined

  constructor(options: { ca?: string } = {}) {
    this.#dispatcher = options.ca === undefined ? undefined : new Agent({ connect: { ca: options.ca } })
  }

  /** The cookies this browser holds for a host name. */
  cookies(host: string): Map<string, string> {
    let jar = this.#jars.get(host)
    if (!jar) this.#jars.set(host, (jar = new Map()))
    return jar
  }

  async get(url: string, headers: Record<string, string> = {}): Promise<WebVisit> {
    return this.#visit(url, { method: 'GET', headers })
  }

  async post(url: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<WebVisit> {
    return this.#visit(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(url).origin, ...headers },
      body: new URLSearchParams(fields).toString(),
    })
  }

  /** Submits the page's first form with the given fields (a submit button is just one more field). */
  async submit(page: WebVisit, fill: Record<string, string> = {}): Promise<WebVisit> {
    const form = parseForm(page.html)
    return this.post(new URL(form.action, page.url).href, { ...form.fields, ...fill })
  }

  /** Follows redirects while they stay on `origin`; returns the first answer that is not one. */
  async followWithin(visit: WebVisit, origin: string): Promise<WebVisit> {
    let current = visit
    for (let hops = 0; current.location && new URL(current.location).origin === origin; hops++) {
      if (hops > 20) throw new Error('too many redirects')
      current = await this.get(current.location)
    }
    return current
  }

  async #visit(url: string, init: { method: string; headers: Record<string, string>; body?: string }): Promise<WebVisit> {
    const host = new URL(url).hostname
    const headers: Record<string, string> = { ...init.headers }
    const jar = this.cookies(host)
    if (jar.size > 0) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
    const res = await undiciFetch(url, {
      method: init.method,
      headers,
      ...(init.body !== undefined && { body: init.body }),
      redirect: 'manual',
      ...(this.#dispatcher && { dispatcher: this.#dispatcher }),
    })
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      const expired = attrs.some((a) => /^max-age=0$/i.test(a.trim()) || /^expires=Thu, 01 Jan 1970/i.test(a.trim()))
      if (value === '' || expired) jar.delete(name)
      else jar.set(name, value)
    }
    const location = res.headers.get('location')
    return {
      url,
      status: res.status,
      headers: res.headers as unknown as Headers,
      html: await res.text(),
      ...(location !== null && { location: new URL(location, url).href }),
    }
  }
}
