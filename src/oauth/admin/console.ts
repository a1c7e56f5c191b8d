/**
 * The operator console's sections, wired to the parts of the authorization server they show.
 * Registered by the OAuth plugin only when `admin.enabled`.
 */
import type { FastifyInstance } from 'fastify'
import type { AuditTrail } from '../../audit/events.js'
import type { GatewayConfig } from '../../config/load.js'
import type { CookieJar } from '../../http/cookies.js'
import { PasswordFailureLimit } from '../../http/password-failures.js'
import type { Keystore } from '../../keys/keystore.js'
import type { LoginSessions, SessionRules } from '../../login/sessions.js'
import type { Store } from '../../store/store.js'
import type { Grants } from '../grants/grants.js'
import { registerClientsSection } from './clients-section.js'
import { registerGrantsSection } from './grants-section.js'
import { registerAdmin } from './routes.js'
import { registerSettingsSection } from './settings-section.js'

export interface ConsoleDeps {
  config: GatewayConfig
  store: Store
  grants: Grants
  keystore: Keystore
  sessions: LoginSessions
  sessionRules: SessionRules
  cookies: CookieJar
  audit: AuditTrail
}

export function registerConsole(app: FastifyInstance, deps: ConsoleDeps): void {
  const { rateLimits } = deps.config
  // Per address only: a global count would let anyone lock the operators' token out.
  const tokenFailures = rateLimits.enabled
    ? new PasswordFailureLimit(deps.store, deps.audit, { perUsernameAndAddress: rateLimits.passwordLogin.perUsernameAndAddress, perUsername: { requests: 0, windowSeconds: 1 } })
    : undefined
  const routes = registerAdmin(app, { ...deps, tokenFailures })
  registerGrantsSection(routes, deps)
  registerClientsSection(routes, deps)
  registerSettingsSection(routes, deps)
}
