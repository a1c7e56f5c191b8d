/**
 * The import rules of src/ (docs/architecture.md explains them). `npm run lint:deps` checks
 * them, and test/architecture/imports.test.ts runs it in the suite, so a circle or an import
 * against the layering fails a build instead of creeping in.
 */
const oauthEndpoints = '^src/oauth/(authorize|token|registration|account|admin)/'

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import circle anywhere in src/, type-only imports included: a circle is a layering mistake.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-test-code-in-src',
      severity: 'error',
      comment: 'The gateway never imports tests, fixtures or dev-only packages.',
      from: { path: '^src/' },
      to: { path: '^test/' },
    },
    {
      name: 'no-dev-dependencies-in-src',
      severity: 'error',
      comment: 'What src/ imports must be a runtime dependency (the image installs only those).',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'] },
    },
    {
      name: 'resource-server-stands-alone',
      severity: 'error',
      comment: 'External-issuer mode is "the AS plugin is not registered": resource/ never needs oauth/ or login/.',
      from: { path: '^src/resource/' },
      to: { path: '^src/(oauth|login|commands)/' },
    },
    {
      name: 'policy-is-pure',
      severity: 'error',
      comment: 'policy/ holds pure rules: no I/O, no Fastify, no store, nothing of the roles above it.',
      from: { path: '^src/policy/' },
      to: { path: '^src/(oauth|resource|login|store|http|keys|metrics|tracing|audit|commands)/|node_modules/(fastify|ioredis|undici)/' },
    },
    {
      name: 'store-knows-nothing-above-it',
      severity: 'error',
      from: { path: '^src/store/' },
      to: { path: '^src/(?!store/|config/)' },
    },
    {
      name: 'config-knows-nothing-above-it',
      severity: 'error',
      comment: 'config/ may use the pure policy checks; nothing that runs the gateway.',
      from: { path: '^src/config/' },
      to: { path: '^src/(?!config/|policy/)' },
    },
    {
      name: 'oauth-models-below-endpoints',
      severity: 'error',
      comment: 'clients/ and grants/ are models: the endpoints use them, never the other way round.',
      from: { path: '^src/oauth/(clients|grants)/' },
      to: { path: `${oauthEndpoints}|^src/oauth/(plugin|metadata)\\.ts$` },
    },
    {
      name: 'clients-below-grants',
      severity: 'error',
      comment: 'A grant records a client snapshot; the client registry knows nothing of grants.',
      from: { path: '^src/oauth/clients/' },
      to: { path: '^src/oauth/grants/' },
    },
    {
      name: 'oauth-endpoints-apart',
      severity: 'error',
      comment: 'Each endpoint folder stands on the models and the shared leaves, not on another endpoint.',
      from: { path: `${oauthEndpoints}` },
      to: { path: `${oauthEndpoints}|^src/oauth/(plugin|metadata)\\.ts$`, pathNot: '^src/oauth/$1/' },
    },
    {
      name: 'commands-only-from-the-cli',
      severity: 'error',
      comment: 'The gateway never depends on its command line.',
      from: { path: '^src/(?!cli\\.ts$|commands/)' },
      to: { path: '^src/(cli\\.ts$|commands/)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
}
