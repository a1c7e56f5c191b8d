/**
 * Password hashes for the static login provider: scrypt with a per-password salt, in the
 * self-describing form scrypt$N$r$p$salt$hash (base64url), compared in constant time.
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto'

/** scrypt's cost parameters (RFC 7914 §2): N (CPU and memory), r (block size), p (parallelism). */
export interface ScryptCost {
  readonly N: number
  readonly r: number
  readonly p: number
}

/** What `gatehouse hash-password` writes: about 32 MiB and 50–100 ms per hash. */
export const PASSWORD_HASH_COST: ScryptCost = { N: 2 ** 15, r: 8, p: 1 }
const { N, r: R, p: P } = PASSWORD_HASH_COST
const KEY_LENGTH = 32

function scrypt(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCallback(password, salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key))),
  )
}

const maxmem = (n: number, r: number) => 256 * n * r

/**
 * `cost` is an injection point for tests only (issue 22): the hash names its own parameters and
 * verifyPassword uses those, so a test's users can log in at a fraction of production's cost.
 */
export async function hashPassword(password: string, cost: ScryptCost = PASSWORD_HASH_COST): Promise<string> {
  const salt = randomBytes(16)
  const hash = await scrypt(password.normalize('NFC'), salt, KEY_LENGTH, { ...cost, maxmem: maxmem(cost.N, cost.r) })
  return ['scrypt', cost.N, cost.r, cost.p, salt.toString('base64url'), hash.toString('base64url')].join('$')
}

/** False for a wrong password and for a malformed hash alike. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = encoded.split('$')
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !hash) return false
  const params = { N: Number(n), r: Number(r), p: Number(p) }
  if (![params.N, params.r, params.p].every(Number.isSafeInteger) || params.N > 2 ** 20) return false
  const expected = Buffer.from(hash, 'base64url')
  const actual = await scrypt(password.normalize('NFC'), Buffer.from(salt, 'base64url'), expected.length, {
    ...params,
    maxmem: maxmem(params.N, params.r) + 1024 * 1024,
  })
  return actual.length === expected.length && timingSafeEqual(actual, expected)
}

/** A hash to compare against when the user does not exist, so timing does not tell. */
export const DECOY_HASH = `scrypt$${N}$${R}$${P}$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`
