// Which URLs are orq's: the identity is only ever sent there.
const defaultOrigins = ['https://api.orq.ai', 'https://my.orq.ai'];

/**
 * Checks `origins` once and returns a matcher over URL strings that allocates nothing: a URL is orq's when
 * it starts with one of the origins followed by the end, "/", "?" or "#" (so `https://api.orq.ai.evil.test`
 * and `https://api.orq.ai@evil.test` are not), or by a port that is the origin's own (`https://api.orq.ai:443`).
 */
export function orqOriginMatcher(origins: readonly string[] | undefined, caller: string): (url: string) => boolean {
  if (origins !== undefined && !Array.isArray(origins)) {
    throw new TypeError(`${caller}: \`origins\` must be an array of URLs, e.g. \`origins: ['http://127.0.0.1:4010']\`; received ${typeof origins}.`);
  }
  const extra = (origins ?? []).map((origin) => {
    let parsed: URL;
    try {
      parsed = new URL(String(origin));
    } catch {
      throw new TypeError(`${caller}: \`origins\` holds ${JSON.stringify(String(origin))}, which is not a URL; pass origins like 'https://orq-proxy.example.com'.`);
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
      throw new TypeError(`${caller}: \`origins\` holds ${JSON.stringify(String(origin))}; only http(s) origins can be orq's.`);
    }
    return parsed.origin;
  });
  const all = [...new Set([...defaultOrigins, ...extra])];
  return (url) => {
    for (const origin of all) {
      if (url.startsWith(origin)) {
        const next = url.charCodeAt(origin.length);
        // NaN: the URL is the origin itself. 47 "/", 63 "?", 35 "#".
        if (Number.isNaN(next) || next === 47 || next === 63 || next === 35) return true;
        // 58 ":", a port: `https://api.orq.ai:443/…` is orq's (the default port, written out), `…:8443` is not.
        // Parsed only then, so other URLs still cost no allocation.
        if (next === 58 && URL.canParse(url) && new URL(url).origin === origin) return true;
      }
    }
    return false;
  };
}
