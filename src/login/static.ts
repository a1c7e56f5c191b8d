/** The `static` login provider: users listed in the YAML with scrypt password hashes. */
import type { StaticUserConfig } from '../config/schema.js'
import { DECOY_HASH, verifyPassword } from './passwords.js'
import type { Identity, PasswordLoginProvider } from './provider.js'

export class StaticLoginProvider implements PasswordLoginProvider {
  readonly id = 'static'
  readonly kind = 'password' as const
  readonly #users: ReadonlyMap<string, StaticUserConfig>

  constructor(users: readonly StaticUserConfig[]) {
    this.#users = new Map(users.map((u) => [u.username, u]))
  }

  async authenticate(username: string, password: string): Promise<Identity | undefined> {
    const user = this.#users.get(username)
    // An unknown user costs the same scrypt as a known one: response time does not tell them apart.
    const ok = await verifyPassword(password, user?.passwordHash ?? DECOY_HASH)
    if (!user || !ok) return undefined
    return {
      sub: user.subject ?? `static:${user.username}`,
      ...(user.name !== undefined && { name: user.name }),
      ...(user.email !== undefined && { email: user.email }),
      groups: user.groups,
      provider: this.id,
    }
  }
}
