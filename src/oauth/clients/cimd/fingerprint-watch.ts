/**
 * SEC-23, SEC-34: a fetched document's fingerprints against the last ones seen (kept in the
 * store, shared by replicas). A changed security member is a warning and a client.changed audit
 * event naming the members, never their values; a changed name or logo only an info line. Key
 * rotation behind a jwks_uri does not change anything here.
 */
import type { AuditTrail } from '../../../audit/events.js'
import { storeKeys } from '../../../store/keys.js'
import type { Store } from '../../../store/store.js'
import { cacheKeyOf } from './cache.js'
import type { CimdLog } from './collaborators.js'
import type { Metadata } from './document.js'
import { DISPLAY_MEMBERS, fingerprintsOf, type Fingerprints } from './fingerprint.js'

interface SeenFingerprints extends Fingerprints {
  clientId: string
}

/** How long the last fingerprint of a document is remembered: as long as a default consent or grant. */
const FINGERPRINT_TTL_MS = 30 * 24 * 3600 * 1000

export async function compareFingerprints(
  { store, log, audit }: { store: Store; log?: CimdLog | undefined; audit?: AuditTrail | undefined },
  clientId: string,
  host: string,
  document: Metadata,
): Promise<void> {
  const now = fingerprintsOf(document)
  const key = storeKeys.cimdFingerprint(cacheKeyOf(clientId))
  const text = await store.get(key)
  const seen = text === undefined ? undefined : (JSON.parse(text) as SeenFingerprints)
  if (seen && seen.clientId === clientId) {
    const changed = Object.keys({ ...seen.members, ...now.members }).filter((m) => seen.members[m] !== now.members[m])
    const isDisplay = (m: string) => (DISPLAY_MEMBERS as readonly string[]).includes(m)
    const security = changed.filter((m) => !isDisplay(m))
    const display = changed.filter(isDisplay)
    if (seen.fingerprint !== now.fingerprint) {
      log?.warn({ clientId: clientId.slice(0, 256), host, changed: security, fingerprint: now.fingerprint, previous: seen.fingerprint }, 'cimd document changed')
      audit?.record({ type: 'client.changed', clientId, members: security })
    }
    if (seen.displayFingerprint !== now.displayFingerprint) {
      log?.info({ clientId: clientId.slice(0, 256), host, changed: display }, 'cimd document display changed')
    }
  }
  const record: SeenFingerprints = { clientId, ...now }
  await store.set(key, JSON.stringify(record), FINGERPRINT_TTL_MS)
}
