/**
 * The cost DPoP adds to one MCP call at the resource (DPOP-05): checking a proof (header, the
 * signature with the key the proof carries, claims, ath) and its replay record, on the memory
 * store and, when one answers, on Redis. Prints µs per proof. Not a test: `npm run bench`.
 */
import { createHash, randomUUID } from 'node:crypto'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { DpopProofs } from '../../src/keys/dpop.js'
import { loadConfigObject } from '../../src/config/load.js'
import { createStore } from '../../src/store/create.js'
import type { Store } from '../../src/store/store.js'

const URL_ = 'https://mcp.example.com/mcp'
const TOKEN = 'eyJ.access-token.for-ath'
const ath = createHash('sha256').update(TOKEN).digest('base64url')
const { privateKey, publicKey } = await generateKeyPair('ES256')
const jwk = await exportJWK(publicKey)
const settings = { algorithms: ['ES256'], proofLifetimeSeconds: 120, clockToleranceSeconds: 10 }

async function proofs(n: number): Promise<string[]> {
  const iat = Math.floor(Date.now() / 1000)
  return Promise.all(
    Array.from({ length: n }, () =>
      new SignJWT({ jti: randomUUID(), htm: 'POST', htu: URL_, iat, ath }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).sign(privateKey),
    ),
  )
}

async function measure(label: string, store: Store): Promise<void> {
  const checker = new DpopProofs(settings, store)
  const rounds: number[] = []
  for (let r = 0; r < 5; r++) {
    const batch = await proofs(2_000)
    const start = process.hrtime.bigint()
    for (const proof of batch) await checker.verify(proof, { method: 'POST', url: URL_, accessToken: TOKEN })
    rounds.push(Number(process.hrtime.bigint() - start) / batch.length / 1000)
  }
  rounds.sort((a, b) => a - b)
  console.log(`${label.padEnd(40)} ${rounds[2]!.toFixed(1).padStart(7)} µs/proof (median of 5 rounds of 2000)`)
}

console.log(`DPoP proof check at the resource, node ${process.version}, ES256`)
const storeOf = (store: Record<string, unknown>) =>
  createStore(loadConfigObject({ publicUrl: 'https://mcp.example.com', resources: [{ id: 'r', name: 'R', path: '/mcp', upstream: 'http://127.0.0.1:9/mcp' }], store }, 'bench').store, console)
const memory = storeOf({ type: 'memory' })
await measure('memory store (verify + replay record)', memory)
await memory.close()
const redis = storeOf({ type: 'redis', redis: { url: 'redis://127.0.0.1:6379', keyPrefix: `gatehouse-bench-${process.pid}:` } })
try {
  await measure('redis store (one round trip added)', redis)
} catch (err) {
  console.log(`redis store: skipped (${(err as Error).message})`)
} finally {
  await redis.close()
}
