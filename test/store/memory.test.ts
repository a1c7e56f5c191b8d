import { execFile } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { MemoryStore } from '../../src/store/memory.js'
import { moduleFile, NODE_LOADER } from '../helpers/repo.js'
import { storeContract } from './contract.js'

t.test('MemoryStore contract', async (t) => {
  storeContract(t, async () => new MemoryStore())
})

t.test('the sweep removes expired records that are never read again', async (t) => {
  const store = new MemoryStore({ sweepIntervalMs: 20 })
  t.teardown(() => store.close())
  await store.set('never-read', 'v', 10)
  await store.set('kept', 'v', 60_000)
  t.equal(store.size, 2)
  await sleep(100)
  t.equal(store.size, 1, 'only the unexpired record is left')
  t.equal(await store.get('kept'), 'v')
})

t.test('the sweep timer does not keep the process alive', async (t) => {
  const storeUrl = pathToFileURL(moduleFile('src/store/memory')).href
  const code = `const { MemoryStore } = await import(${JSON.stringify(storeUrl)})
new MemoryStore({ sweepIntervalMs: 10 })`
  // execFile kills the child at the timeout and rejects: a kept-alive process fails here.
  await t.resolves(
    promisify(execFile)(process.execPath, [...NODE_LOADER, '--input-type=module', '-e', code], { timeout: 8000 }),
    'the process exits on its own without close()',
  )
})
