/**
 * What the schema cannot say about the `cimd` section: called by load.ts, problems reported
 * with their paths, development switches turned into startup warnings.
 */
import { metadataPolicyProblems, type MetadataPolicy } from '../policy/metadata-policy.js'
import { trustEntryProblems, type TrustEntry } from '../policy/cimd-trust.js'
import type { CimdConfig } from './cimd-schema.js'

export function cimdConfigProblems(cimd: CimdConfig, externalIssuer: boolean): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = []
  const add = (path: string, message: string) => problems.push({ path: `cimd.${path}`, message })
  if (cimd.enabled && externalIssuer) add('enabled', 'metadata documents belong to the built-in authorization server, unused with externalIssuer')
  for (const list of ['allow', 'deny'] as const) {
    cimd.trust[list].forEach((entry, i) => {
      for (const message of trustEntryProblems(entry as TrustEntry)) add(`trust.${list}[${i}]`, message)
    })
  }
  const { minSeconds, maxSeconds, defaultSeconds } = cimd.cache
  if (minSeconds > maxSeconds) add('cache.minSeconds', `must not exceed maxSeconds (${maxSeconds})`)
  if (defaultSeconds < minSeconds || defaultSeconds > maxSeconds) add('cache.defaultSeconds', 'must lie between minSeconds and maxSeconds')
  if (cimd.fetch.connectTimeoutMs > cimd.fetch.timeoutMs) add('fetch.connectTimeoutMs', `must not exceed timeoutMs (${cimd.fetch.timeoutMs})`)
  for (const p of metadataPolicyProblems(cimd.metadataPolicy as MetadataPolicy)) add(`metadataPolicy.${p.path}`, p.message)
  return problems
}

export function cimdWarnings(cimd: CimdConfig): string[] {
  if (!cimd.enabled) return []
  const warnings: string[] = []
  if (cimd.trust.any) warnings.push('cimd.trust.any: any https client id URL is accepted (deny entries still apply)')
  if (cimd.allowHttp) warnings.push('cimd.allowHttp: http:// client ids are accepted: development only')
  if (cimd.allowPrivateAddresses) {
    warnings.push('cimd.allowPrivateAddresses: metadata documents are fetched from loopback and private addresses: development only')
  }
  if (!cimd.cache.enabled) warnings.push('cimd.cache.enabled is false: every use fetches the document again: development only')
  return warnings
}
