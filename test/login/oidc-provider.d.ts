/**
 * The part of oidc-provider's API the login tests use (the package ships no type declarations
 * and there is no @types/oidc-provider in the project).
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'

  interface Grant {
    addOIDCScope(scope: string): void
    save(): Promise<string>
  }

  interface Account {
    accountId: string
    claims(use: string, scope: string): Promise<Record<string, unknown>>
  }

  interface KoaContextWithOIDC {
    oidc: {
      provider: Provider
      client?: { clientId: string }
      session?: { accountId: string; grantIdFor(clientId: string): string | undefined }
      result?: { consent?: { grantId?: string } }
    }
  }

  interface Configuration {
    clients?: Record<string, unknown>[]
    jwks?: { keys: Record<string, unknown>[] }
    cookies?: { keys: string[] }
    pkce?: { required: () => boolean }
    claims?: Record<string, string[]>
    features?: Record<string, unknown>
    ttl?: Record<string, number>
    findAccount?: (ctx: KoaContextWithOIDC, id: string) => Promise<Account | undefined>
    loadExistingGrant?: (ctx: KoaContextWithOIDC) => Promise<Grant | undefined>
  }

  export class Provider {
    constructor(issuer: string, configuration?: Configuration)
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    Grant: {
      new (fields: { clientId: string; accountId: string }): Grant
      find(id: string): Promise<Grant | undefined>
    }
    on(event: string, listener: (...args: unknown[]) => void): this
    /** Koa middleware around the provider's own routes. */
    use(middleware: (ctx: { path: string; body: any }, next: () => Promise<void>) => Promise<void>): this
  }
}
