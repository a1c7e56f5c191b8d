/**
 * `gatehouse keys generate|list|rotate`: a new private signing key (PKCS#8 PEM), the configured
 * keys as the gateway loads them, and a rotation: a new key file and the steps to roll it in.
 */
import { writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, importPKCS8 } from 'jose'
import { loadKeystore } from '../keys/keystore.js'
import { UsageError, type CommandIo } from './command.js'
import { configFile, openStore, operatorName, recordOperatorEvent } from './deployment.js'

export const usage = `  gatehouse keys generate [--alg ES256|RS256|PS256|EdDSA]
  gatehouse keys list --config FILE        (kid, algorithm and role of each configured key)
  gatehouse keys rotate --config FILE --out NEW_KEY_FILE [--alg ES256] [--kid KID] [--actor NAME]`

export async function run(args: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { alg: { type: 'string', default: 'ES256' }, config: { type: 'string' }, out: { type: 'string' }, kid: { type: 'string' }, actor: { type: 'string' } },
  })
  const action = positionals[0]
  if (action === 'list') return keysList(values.config, io)
  if (action !== 'generate' && action !== 'rotate') {
    throw new UsageError('keys generate [--alg ALG] | keys list --config FILE | keys rotate --config FILE --out FILE')
  }
  if (!['ES256', 'RS256', 'PS256', 'EdDSA'].includes(values.alg)) throw new UsageError(`unsupported --alg ${values.alg}`)
  const { privateKey } = await generateKeyPair(values.alg, { extractable: true, ...(values.alg !== 'ES256' && values.alg !== 'EdDSA' && { modulusLength: 3072 }) })
  const pem = await exportPKCS8(privateKey)
  if (action === 'generate') {
    io.stdout.write(pem)
    return 0
  }
  return keysRotate(values.config, values.out, values.alg, values.kid, pem, io, operatorName(values.actor))
}

/** The configured signing keys as the gateway loads them: kid (given or thumbprint), algorithm, role. */
async function keysList(file: string | undefined, io: CommandIo): Promise<number> {
  const config = await configFile(file, 'keys list', io, 'operator')
  if (config.externalIssuer) throw new UsageError('this gateway trusts an external issuer: it signs nothing')
  if (config.keys.length === 0) {
    io.stdout.write('no signing keys configured: the gateway signs with a generated development key kept in its store\n')
    return 0
  }
  // Each key is loaded on its own, which checks it and names it as the gateway does (kid or thumbprint).
  const store = openStore({ type: 'memory' }, io)
  try {
    for (const key of config.keys) {
      const { active } = await loadKeystore([{ ...key, active: true }], store, io.env)
      const from = key.file !== undefined ? `file ${key.file}` : `env ${key.env}`
      const role = key.active ? 'active (signs new tokens)' : 'verify only'
      io.stdout.write(`${active.kid}\t${active.alg}\t${role}\t${from}\n`)
    }
  } finally {
    await store.close()
  }
  return 0
}

/**
 * Key rotation for a deployment whose keys come from files or the environment: the gateway
 * never writes its own configuration, so this writes the new private key to a file (mode 0600,
 * never over an existing one) and prints the three configuration changes to roll it in. Every
 * replica must know a key before any replica signs with it (the resource side checks tokens
 * with its own key list), and the old key must keep verifying until the last token it signed
 * has expired.
 */
async function keysRotate(
  file: string | undefined,
  out: string | undefined,
  alg: string,
  kidOption: string | undefined,
  pem: string,
  io: CommandIo,
  actor: string,
): Promise<number> {
  const config = await configFile(file, 'keys rotate', io, 'operator')
  if (config.externalIssuer) throw new UsageError('this gateway trusts an external issuer: it signs nothing')
  if (!out) throw new UsageError('keys rotate needs --out FILE for the new private key')
  const store = openStore({ type: 'memory' }, io)
  let kids: string[]
  try {
    kids = config.keys.length === 0 ? [] : (await loadKeystore(config.keys, store, io.env)).jwks.keys.map((k) => k.kid!)
  } finally {
    await store.close()
  }
  const today = new Date().toISOString().slice(0, 10)
  let kid = kidOption ?? `${alg.toLowerCase()}-${today}`
  for (let n = 2; kidOption === undefined && kids.includes(kid); n++) kid = `${alg.toLowerCase()}-${today}-${n}`
  if (kids.includes(kid)) throw new UsageError(`a configured key already has kid ${kid}`)
  try {
    await writeFile(out, pem, { mode: 0o600, flag: 'wx' })
  } catch (err) {
    throw new UsageError(`cannot write ${out} (${(err as NodeJS.ErrnoException).code}); it must not exist yet`)
  }
  recordOperatorEvent(config, io, { type: 'key.rotation_started', kid, alg, actor })
  // The thumbprint reads only the public members (RFC 7638 §3.2).
  const thumbprint = await calculateJwkThumbprint(await exportJWK(await importPKCS8(pem, alg, { extractable: true })), 'sha256')
  const waitSeconds = config.accessTokens.ttlSeconds + config.accessTokens.clockToleranceSeconds
  // Values double-quoted (JSON strings are valid YAML): a path with spaces, commas or braces
  // must still read back as one value.
  const q = (value: string) => JSON.stringify(value)
  const yamlKey = (k: { file?: string; env?: string; kid?: string; alg: string }, active: boolean) =>
    `  - { ${k.file !== undefined ? `file: ${q(k.file)}` : `env: ${q(k.env ?? '')}`}${k.kid !== undefined ? `, kid: ${q(k.kid)}` : ''}, alg: ${k.alg}, active: ${active} }`
  const current = config.keys.map((k) => ({ ...k }))
  const activeNow = current.findIndex((k) => k.active)
  const fresh = { file: out, kid, alg }
  const keysYaml = (newActive: boolean, keepOld: boolean) =>
    ['keys:', ...(keepOld ? current.map((k, i) => yamlKey(k, !newActive && i === activeNow)) : []), yamlKey(fresh, newActive)].join('\n')
  io.stdout.write(`wrote the new ${alg} private key to ${out} (kid ${kid}, thumbprint ${thumbprint})
Put it where every replica reads its keys (the file path above, a mounted Secret, or an
environment variable with env: instead of file:), then change the configuration in three steps,
rolling every replica out after each one:

1. Publish the new key, still signing with the current one (replicas that have not restarted yet
   must already know the key before anyone signs with it):

${keysYaml(false, true)}

2. Once every replica runs step 1, sign with the new key; the old one only verifies:

${keysYaml(true, true)}

3. After step 2 has run everywhere for at least ${waitSeconds} s (accessTokens.ttlSeconds +
   clockToleranceSeconds: the last token the old key signed has expired), remove the old key:

${keysYaml(true, false)}
`)
  if (config.keys.length === 0) {
    io.stdout.write(
      '\n(The gateway signs with a generated development key today, which no configuration names: step 2 is the ' +
        'whole change. Tokens the development key signed stop verifying; clients refresh or sign in again.)\n',
    )
  }
  return 0
}
