/**
 * Password hashes for test users. Logging in verifies with the parameters the hash names, so a
 * hash at N = 2^10 costs about 1 ms where production's N = 2^15 costs 50–100 ms of CPU; with a
 * few hundred logins across the suite that was a tenth of `npm test` (issue 22). Production's
 * parameters are still what `gatehouse hash-password` writes (test/adversarial/config-cli.test.ts)
 * and what an unknown user is compared against (DECOY_HASH, test/login/password-failures.test.ts).
 */
import { hashPassword, type ScryptCost } from '../../src/login/passwords.js'

const TEST_COST: ScryptCost = { N: 2 ** 10, r: 8, p: 1 }

export function testPasswordHash(password: string): Promise<string> {
  return hashPassword(password, TEST_COST)
}
