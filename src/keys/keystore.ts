/**
 * The gateway's signing keys: several at once, one active (it signs new tokens), all of them
 * published in the JWKS so tokens signed before a rotation keep verifying until they expire.
 * Without configured keys, a development key is generated once and kept in the store so every
 * replica signs and verifies with the same key.
 */
import { readFile } from 'node:fs/promises'
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  importPKCS8,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
} from 'jose'
import type { SigningKeyConfig } from '../config/schema.js'
import { storeKeys } from '../store/keys.js'
import type { Store } from '../store/store.js'

export interface SigningKey {
  readonly kid: string
  readonly alg: string
  readonly privateKey: CryptoKey
  readonly publicJwk: JWK
}

export interface Keystore {
  /** The key that signs new tokens. */
  readonly active: SigningKey
  /** Public halves of every key, as published at the JWKS endpoint. */
  readonly jwks: JSONWebKeySet
  /** True when the key was generated for development rather than configured. */
  readonly generated: boolean
}

const DEV_KEY_TTL_MS = 30 * 24 * 3600 * 1000
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'] as const

export class KeyError extends Error {
  override readonly name = 'KeyError'
}

export async function loadKeystore(
  configured: readonly SigningKeyConfig[],
  store: Store,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Keystore> {
  if (configured.length === 0) return { ...keystoreOf([await developmentKey(store)]), generated: true }
  const keys = await Promise.all(configured.map((k) => loadConfiguredKey(k, env)))
  const kids = new Set(keys.map((k) => k.kid))
  if (kids.size !== keys.length) throw new KeyError('two signing keys have the same kid')
  const activeIndex = configured.findIndex((k) => k.active)
  const active = keys[activeIndex === -1 ? 0 : activeIndex]!
  return { ...keystoreOf([active, ...keys.filter((k) => k !== active)]), generated: false }
}

/**
 * What loadKeystore would refuse, as configuration problems, without a store: `check-config`
 * runs it so that a key file that is not a key fails there and not at `serve`'s start.
 */
export async function configuredKeyProblems(configured: readonly SigningKeyConfig[], env: NodeJS.ProcessEnv): Promise<{ path: string; message: string }[]> {
  const problems: { path: string; message: string }[] = []
  const kids = new Map<string, number>()
  for (const [i, config] of configured.entries()) {
    try {
      const key = await loadConfiguredKey(config, env)
      const other = kids.get(key.kid)
      if (other !== undefined) problems.push({ path: `keys[${i}]`, message: `has the same kid as keys[${other}] (${key.kid})` })
      kids.set(key.kid, i)
    } catch (err) {
      problems.push({ path: `keys[${i}]`, message: (err as Error).message })
    }
  }
  return problems
}

function keystoreOf(keys: SigningKey[]): Omit<Keystore, 'generated'> {
  return { active: keys[0]!, jwks: { keys: keys.map((k) => k.publicJwk) } }
}

async function loadConfiguredKey(config: SigningKeyConfig, env: NodeJS.ProcessEnv): Promise<SigningKey> {
  const where = config.file ? `key file ${config.file}` : `environment variable ${config.env}`
  let text: string | undefined
  try {
    text = config.file ? await readFile(config.file, 'utf8') : env[config.env!]
  } catch (err) {
    throw new KeyError(`cannot read ${where} (${(err as NodeJS.ErrnoException).code})`)
  }
  if (!text?.trim()) throw new KeyError(`${where} is empty or not set`)
  try {
    const trimmed = text.trim()
    const privateKey = trimmed.startsWith('{')
      ? await importPrivateJwk(JSON.parse(trimmed) as JWK, config.alg)
      : await importPKCS8(trimmed, config.alg, { extractable: true })
    return await describe(privateKey, config.alg, config.kid)
  } catch (err) {
    // The message names the source, never the key material.
    throw new KeyError(`${where} is not a ${config.alg} private key in PKCS#8 PEM or JWK form`, { cause: err })
  }
}

async function importPrivateJwk(jwk: JWK, alg: string): Promise<CryptoKey> {
  if (jwk.d === undefined) throw new KeyError('the JWK has no private part')
  const key = await importJWK({ ...jwk, alg, ext: true }, alg)
  if (key instanceof Uint8Array) throw new KeyError('symmetric keys cannot sign access tokens')
  return key
}

async function describe(privateKey: CryptoKey, alg: string, kid?: string): Promise<SigningKey> {
  const jwk = await exportJWK(privateKey)
  const publicJwk: JWK = { ...jwk }
  for (const member of PRIVATE_JWK_MEMBERS) delete publicJwk[member]
  const id = kid ?? (await calculateJwkThumbprint(publicJwk, 'sha256'))
  return { kid: id, alg, privateKey, publicJwk: { ...publicJwk, kid: id, alg, use: 'sig' } }
}

/** The shared development key: the first replica to start writes it, the others read it. */
async function developmentKey(store: Store): Promise<SigningKey> {
  const key = storeKeys.devSigningKey()
  let stored = await store.get(key)
  if (stored === undefined) {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true })
    await store.setIfAbsent(key, JSON.stringify(await exportJWK(privateKey)), DEV_KEY_TTL_MS)
    stored = await store.get(key)
    if (stored === undefined) throw new KeyError('the development key vanished from the store')
  }
  return describe(await importPrivateJwk(JSON.parse(stored) as JWK, 'ES256'), 'ES256')
}
