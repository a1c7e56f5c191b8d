/**
 * DPoP proofs for the proxy benchmark's DPoP scenario (RFC 9449 §4): one key pair for the
 * run, whose thumbprint the gateway binds the benchmark's access token to, and fresh proofs
 * (unique jti, current iat, ath of the token) signed before each round so that signing is not
 * part of what is measured.
 */
import { createHash, randomUUID } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'

export interface ProofSigner {
  /** RFC 7638 thumbprint of the public key (the token's cnf.jkt). */
  jkt: string
  /** `count` proofs for POST to `url` presenting `token`. */
  sign(count: number, url: string, token: string): Promise<string[]>
}

export async function proofSigner(): Promise<ProofSigner> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwk: JWK = await exportJWK(publicKey)
  const jkt = await calculateJwkThumbprint(jwk)
  return {
    jkt,
    async sign(count, url, token) {
      const ath = createHash('sha256').update(token).digest('base64url')
      const iat = Math.floor(Date.now() / 1000)
      const proofs: string[] = []
      for (let i = 0; i < count; i++) {
        proofs.push(await new SignJWT({ jti: randomUUID(), htm: 'POST', htu: url, iat, ath }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).sign(privateKey))
      }
      return proofs
    },
  }
}
