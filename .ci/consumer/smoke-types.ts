// Type-checked with skipLibCheck off in a project without @orq-ai/node: the shipped types must not need the optional peer.
import { orqIdentity, type OrqClient } from 'express-orq-identity';

const client: OrqClient | undefined = undefined;
const middleware = orqIdentity(client === undefined ? { apiKey: 'key' } : { client });
export default middleware;
