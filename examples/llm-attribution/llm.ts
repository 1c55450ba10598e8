// A service deep in the app that calls orq's LLMs: it never sees `req`, yet every call carries its user's identity.
import type { Orq } from '@orq-ai/node';
import { currentOrqIdentity, toPublicIdentity } from '../../src/index.js';

/** The identity of the request being served, in the shape LLM calls take; undefined for anonymous requests. */
function callerIdentity() {
  const identity = currentOrqIdentity();
  return identity === undefined ? undefined : toPublicIdentity(identity);
}

/** Invokes an orq deployment; `identity` is a top-level field of the invoke body. */
export async function askDeployment(orq: Orq, question: string): Promise<string> {
  const identity = callerIdentity();
  const answer = await orq.deployments.invoke({
    key: 'support-bot',
    messages: [{ role: 'user', content: question }],
    ...(identity === undefined ? {} : { identity }),
  });
  return textOf(answer?.choices[0]?.message);
}

/**
 * Calls the router's chat completions. @orq-ai/node 4.15 carries the identity only inside the deprecated
 * `orq` field of this request (orq's docs show a top-level `identity`, which the SDK does not send).
 */
export async function askRouter(orq: Orq, question: string): Promise<string> {
  const identity = callerIdentity();
  const completion = await orq.router.chat.completions.create({
    model: 'openai/gpt-4o-mini',
    messages: [{ role: 'user', content: question }],
    ...(identity === undefined ? {} : { orq: { identity } }),
  });
  // Without `stream: true` the answer is a body, not an event stream.
  return 'choices' in completion ? textOf(completion.choices[0]?.message) : '';
}

function textOf(message: unknown): string {
  const content = (message as { content?: unknown } | undefined)?.content;
  return typeof content === 'string' ? content : '';
}
