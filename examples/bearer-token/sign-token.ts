// Mints a token for curl: `AUTH_SECRET=… npx tsx examples/bearer-token/sign-token.ts <sub> <name> <email>`.
import { signToken } from './auth.js';

const [sub, name, email] = process.argv.slice(2);
const secret = process.env.AUTH_SECRET;
if (sub === undefined || name === undefined || email === undefined || secret === undefined) {
  console.error('usage: AUTH_SECRET=<the server\'s secret> npx tsx examples/bearer-token/sign-token.ts <sub> <name> <email>');
  process.exit(2);
}
try {
  console.log(signToken({ sub, name, email }, secret));
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(2);
}
