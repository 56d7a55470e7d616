// The official MCP TypeScript SDK client, with OAuth client providers that need no human:
// auth code + PKCE with the login done by headlessAuthorize(), and client_credentials.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { headlessAuthorize } from './headless-login.mjs';

/**
 * An OAuthClientProvider for the auth-code flow (registered by DCR, public client, PKCE) whose
 * "browser" is headlessAuthorize(): redirectToAuthorization() logs in and keeps the code.
 */
export class HeadlessOAuthProvider {
  constructor({ login = 'alice', grantTypes = ['authorization_code', 'refresh_token'], clientName = 'mcp-gate e2e' } = {}) {
    this.login = login;
    this.grantTypes = grantTypes;
    this.clientName = clientName;
    this.redirectUrl = 'http://127.0.0.1:33418/callback';
    /** Every authorization URL the SDK sent the "user" to. */
    this.authorizationUrls = [];
    this.registrations = 0;
    this._tokens = undefined;
    this._client = undefined;
    this._verifier = undefined;
    this._code = undefined;
  }

  get clientMetadata() {
    return {
      client_name: this.clientName,
      redirect_uris: [this.redirectUrl],
      grant_types: this.grantTypes,
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  clientInformation() {
    return this._client;
  }

  saveClientInformation(info) {
    if (info.client_id !== this._client?.client_id) this.registrations += 1;
    this._client = info;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
  }

  saveCodeVerifier(verifier) {
    this._verifier = verifier;
  }

  codeVerifier() {
    return this._verifier;
  }

  async redirectToAuthorization(url) {
    this.authorizationUrls.push(new URL(url));
    const callback = await headlessAuthorize(url, { login: this.login });
    this._code = callback.searchParams.get('code');
  }

  /** The code from the last login, once. */
  takeCode() {
    const code = this._code;
    this._code = undefined;
    if (!code) throw new Error('no authorization code: redirectToAuthorization() was not called');
    return code;
  }
}

/** The SDK's client_credentials provider, for the pre-registered confidential client. */
export function clientCredentialsProvider({ issuer, clientId = 'mcp-cc', clientSecret = 'mcp-cc-secret', scope } = {}) {
  return new ClientCredentialsProvider({ clientId, clientSecret, expectedIssuer: issuer, clientName: 'mcp-gate e2e machine', scope });
}

/** A fetch that records every request and response (method, url, status, www-authenticate). */
export function recordingFetch() {
  const calls = [];
  const recorder = async (input, init) => {
    const res = await fetch(input, init);
    calls.push({
      method: init?.method ?? 'GET',
      url: String(input instanceof Request ? input.url : input),
      status: res.status,
      wwwAuthenticate: res.headers.get('www-authenticate'),
    });
    return res;
  };
  recorder.calls = calls;
  return recorder;
}

/**
 * Connects an SDK Client to `mcpUrl` through `authProvider`. When the SDK stops for a user
 * login (UnauthorizedError), finishes it with the code the headless provider got and connects
 * again with a fresh transport, as a real app does after its redirect comes back.
 */
export async function connectWithOAuth(mcpUrl, authProvider, { fetch: fetchFn } = {}) {
  const attempt = async () => {
    const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider, fetch: fetchFn });
    const client = new Client({ name: 'mcp-gate-e2e', version: '1.0.0' });
    try {
      await client.connect(transport);
      return { client, transport };
    } catch (err) {
      await transport.close().catch(() => {});
      if (err instanceof UnauthorizedError && authProvider instanceof HeadlessOAuthProvider) {
        await transport.finishAuth(authProvider.takeCode());
        return undefined;
      }
      throw err;
    }
  };
  return (await attempt()) ?? (await attempt()) ?? Promise.reject(new Error('still unauthorized after login'));
}

/** The decoded header and payload of a JWT (no verification: the gate does that). */
export function decodeJwt(token) {
  const [header, payload] = token.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
  return { header, payload };
}
