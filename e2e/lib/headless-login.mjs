// Drives oidc-provider's devInteractions login and consent pages with plain HTTP, as a user's
// browser would: follow redirects, post the form each interaction page shows, keep the cookies.

/**
 * Walks from `authorizationUrl` until the AS redirects off its own origin (to the client's
 * redirect URI) and returns that redirect URL, which carries `code`, `state` and `iss`.
 */
export async function headlessAuthorize(authorizationUrl, { login = 'alice' } = {}) {
  const asOrigin = new URL(authorizationUrl).origin;
  const cookies = new Map();
  let url = new URL(authorizationUrl);
  let form;
  for (let hop = 0; hop < 20; hop++) {
    if (url.origin !== asOrigin) {
      const error = url.searchParams.get('error');
      if (error) throw new Error(`authorization refused: ${error} ${url.searchParams.get('error_description') ?? ''}`);
      return url;
    }
    const headers = { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, { method: form ? 'POST' : 'GET', body: form, headers, redirect: 'manual' });
    for (const cookie of res.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const eq = pair.indexOf('=');
      cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    form = undefined;
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      url = new URL(location, url);
      continue;
    }
    const page = await res.text();
    const prompt = res.status === 200 && page.match(/name="prompt" value="(\w+)"/)?.[1];
    if (prompt === 'login') form = new URLSearchParams({ prompt, login, password: 'any' });
    else if (prompt === 'consent') form = new URLSearchParams({ prompt });
    else throw new Error(`unexpected HTTP ${res.status} at ${url}: ${page.slice(0, 500)}`);
  }
  throw new Error(`authorization did not finish within 20 hops, last at ${url}`);
}
