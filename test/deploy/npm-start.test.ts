/**
 * `npm start` is the quick start's first command, and people stop it with Ctrl-C or a SIGTERM to
 * npm (a terminal, systemd, a process manager). npm passes the signal to the shell that runs the
 * script; unless that shell has exec'd node, node never sees it and keeps the port. The package's
 * own `start` script runs here, in a scratch package whose dist/cli.js stands in for the build
 * (`prestart` would compile the project, which says nothing about signals).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { repoRoot } from './helm.js'

const startScript = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start

t.test('a SIGTERM to `npm start` reaches the gateway process', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-npm-start-'))
  mkdirSync(join(dir, 'dist'))
  const marker = join(dir, 'got-sigterm')
  const pidFile = join(dir, 'pid')
  t.teardown(() => {
    // A stand-in the signal never reached would outlive the test.
    try {
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL')
    } catch {
      // gone, as it should be
    }
  })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'npm-start-probe', version: '1.0.0', private: true, scripts: { start: startScript } }))
  writeFileSync(
    join(dir, 'dist', 'cli.js'),
    `process.on('SIGTERM', () => { require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'yes'); process.exit(0) })\n` +
      `require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid))\n` +
      `console.log('ready', process.argv.slice(2).join(' '))\nsetInterval(() => {}, 1000)\n`,
  )
  const npm = spawn('npm', ['start', '--silent'], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] })
  let output = ''
  npm.stdout.setEncoding('utf8')
  await new Promise<void>((resolve, reject) => {
    npm.stdout.on('data', (chunk: string) => {
      output += chunk
      if (output.includes('ready')) resolve()
    })
    npm.once('exit', () => reject(new Error(`npm start exited early: ${output}`)))
  })
  t.match(output, 'ready serve', 'the script runs `dist/cli.js serve`')
  const exited = once(npm, 'exit')
  npm.kill('SIGTERM')
  await exited
  npm.stdout.destroy()
  // The stand-in writes the marker in its SIGTERM handler; a process left behind would never write it.
  for (let i = 0; i < 50 && !existsSync(marker); i++) await new Promise((r) => setTimeout(r, 100))
  t.ok(existsSync(marker), 'node itself received the SIGTERM, not only npm and its shell')
})
