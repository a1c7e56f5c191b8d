/**
 * SIGHUP to a real `gatehouse serve` process (issue 17): it no longer ends the process; it
 * reopens an audit file logrotate moved away and reloads the configuration file. A change of the
 * file alone is reloaded too, here seen as a resource that did not exist before. The in-process
 * cases (streams across a reload, invalid files, restart-only settings): test/gateway/reload.test.ts.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { reservePort } from './helpers/ports.js'
import { CLI_ARGV } from './helpers/repo.js'

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

t.test('SIGHUP reopens the audit file and reloads the configuration; a file change reloads it too', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-cli-reload-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const port = await reservePort(t)
  const origin = `http://127.0.0.1:${port}`
  const audit = join(dir, 'audit.log')
  const file = join(dir, 'gatehouse.yaml')
  // The upstreams are never called: only the resources' metadata is read.
  const resource = (id: string, path: string) => ({ id, name: id, path, upstream: 'http://127.0.0.1:9/mcp', scopes: [{ name: 'mcp' }] })
  const config = (resources: unknown[]) =>
    JSON.stringify({ publicUrl: origin, listen: { host: '127.0.0.1', port }, audit: { sink: 'file', file: audit }, resources })
  await writeFile(file, config([resource('files', '/mcp')]))

  const child = spawn(process.execPath, [...CLI_ARGV, 'serve', '--config', file], { env: { ...process.env } })
  let stdout = ''
  let exit: number | null | undefined
  child.stdout.on('data', (c: Buffer) => (stdout += c))
  child.stderr.on('data', (c: Buffer) => (stdout += c))
  child.on('exit', (code) => (exit = code))
  t.teardown(() => void (exit === undefined && child.kill('SIGKILL')))
  await until('the gateway to listen', () => /Server listening/.test(stdout))
  const metadata = (path: string) => fetch(`${origin}/.well-known/oauth-protected-resource${path}`).then((r) => r.status)
  t.equal(await metadata('/second/mcp'), 404, 'no second resource yet')

  // logrotate: the file moved away, then SIGHUP.
  await rename(audit, `${audit}.1`)
  child.kill('SIGHUP')
  await until('the reload to be audited in a new audit file', async () => existsSync(audit) && /"config.reload"/.test(await readFile(audit, 'utf8')))
  t.match(JSON.parse((await readFile(audit, 'utf8')).trim()), { audit: 'config.reload', result: 'applied', trigger: 'signal' }, 'the reopened file has the reload')
  t.equal(exit, undefined, 'the process is still running')
  // The log goes out in batches (src/log.ts): wait for it rather than read it at once.
  await until('the reload to be logged', () => /configuration reloaded/.test(stdout))
  t.match(stdout, /configuration reloaded/, 'the reload is logged')
  t.equal(await metadata('/mcp'), 200, 'and still serves')

  await writeFile(file, config([resource('files', '/mcp'), resource('second', '/second/mcp')]))
  await until('the new resource', async () => (await metadata('/second/mcp')) === 200)
  t.pass('a change of the file added the resource, without a signal')
  t.match(await readFile(audit, 'utf8'), /"audit":"config.reload","result":"applied","trigger":"file"/)

  child.kill('SIGTERM')
  await until('the process to end', () => exit !== undefined)
  t.equal(exit, 0, 'SIGTERM still ends it gracefully')
})
