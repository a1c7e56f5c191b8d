/**
 * The frame of every page a person sees at the gateway: server-rendered, no external assets
 * (BCP-16), unframeable (BCP-14), every interpolated value escaped (SEC-25).
 */
import { createHash } from 'node:crypto'
import type { FastifyReply } from 'fastify'

const STYLE = `
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#57606a;--bg:#f6f8fa;--card:#fff;--line:#d0d7de;--field:#818b98;--accent:#0b57d0;--btn:#0b57d0;--warn-bg:#fff8c5;--warn-line:#d4a72c;--err:#cf222e}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9da7b3;--bg:#0d1117;--card:#161b22;--line:#30363d;--field:#6e7681;--accent:#4493f8;--btn:#1f6feb;--warn-bg:#3b2e00;--warn-line:#9e6a03;--err:#f85149}}
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:30rem;margin:3rem auto;padding:2rem;background:var(--card);border:1px solid var(--line);border-radius:12px}
h1{font-size:1.35rem;margin:0 0 1rem}p{margin:.5rem 0}.muted{color:var(--muted);font-size:.9rem}
dl{margin:1rem 0;display:grid;grid-template-columns:auto 1fr;gap:.35rem 1rem}dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
ul.scopes{padding-left:1.2rem}ul.scopes li{margin:.25rem 0}.new{font-weight:600}.badge{font-size:.75rem;border:1px solid var(--line);border-radius:999px;padding:0 .5rem;margin-left:.35rem}
.warning{background:var(--warn-bg);border:1px solid var(--warn-line);border-radius:8px;padding:.75rem;margin:1rem 0}
.error{color:var(--err)}h2{font-size:1.1rem;margin:.5rem 0}ul.grants{list-style:none;padding:0}li.grant{border-top:1px solid var(--line);padding:.75rem 0}label{display:block;margin:.75rem 0 .25rem;font-weight:600}
input[type=text],input[type=password]{width:100%;padding:.6rem;border:1px solid var(--field);border-radius:6px;background:var(--bg);color:var(--fg);font:inherit}
.actions{display:flex;gap:.75rem;margin-top:1.5rem}button,a.button{font:inherit;padding:.6rem 1.2rem;border-radius:6px;border:1px solid var(--field);background:var(--card);color:var(--fg);cursor:pointer;text-decoration:none;display:inline-block}
button.primary{background:var(--btn);border-color:var(--btn);color:#fff}button:focus-visible,a.button:focus-visible,input:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
main.wide{max-width:64rem}nav{display:flex;flex-wrap:wrap;gap:.25rem 1rem;margin:0 0 1rem}table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-top:1px solid var(--line);overflow-wrap:anywhere}pre{overflow-x:auto;background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:.75rem;font-size:.85rem}
@media (max-width:32rem){main{margin:0;border:0;border-radius:0;padding:1.5rem 1.25rem}dl{grid-template-columns:1fr;gap:0}dt{margin-top:.5rem}}
`

const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`

export interface Page {
  html: string
  /** The Content-Security-Policy for this page. */
  csp: string
}

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** Untrusted display text: no control or bidi-override characters, bounded length (SEC-25). */
export function displayText(value: string, max = 80): string {
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '').trim()
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean
}

/**
 * `form-action` also governs where a form submission may redirect, so the consent and login
 * forms must be allowed to land on the client's redirect URI. The operator console's tables use
 * the wide layout.
 */
export function page(title: string, body: string, formTargets: readonly string[] = [], layout: 'narrow' | 'wide' = 'narrow'): Page {
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="same-origin"><title>${escapeHtml(title)} · Gatehouse</title><style>${STYLE}</style></head>
<body><main${layout === 'wide' ? ' class="wide"' : ''}>${body}</main></body></html>`
  const csp = [
    "default-src 'none'",
    `style-src ${STYLE_HASH}`,
    `form-action 'self' ${formTargets.join(' ')}`.trim(),
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ')
  return { html, csp }
}

export function errorPage(title: string, message: string): Page {
  return page(
    title,
    `<h1>${escapeHtml(title)}</h1><p role="alert">${escapeHtml(message)}</p>
<p class="muted">You can close this window. If you were connecting an application, start again from it.</p>`,
  )
}

/** Sends a page with its own CSP; pages hold per-request forms, so nothing caches them. */
export function sendPage(reply: FastifyReply, page: Page): FastifyReply {
  return reply
    .header('content-security-policy', page.csp)
    .header('cache-control', 'no-store')
    .type('text/html; charset=utf-8')
    .send(page.html)
}
