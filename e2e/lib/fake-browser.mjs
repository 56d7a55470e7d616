#!/usr/bin/env node
// A stand-in for the user's browser, for CLI clients that "open" the authorization URL
// (BROWSER=e2e/lib/fake-browser.mjs): log in and consent headlessly, then load the redirect
// (the client's local callback) as the browser would.
import { headlessAuthorize } from './headless-login.mjs';

const callback = await headlessAuthorize(process.argv[2]);
const res = await fetch(callback);
await res.body?.cancel();
console.error(`fake-browser: callback ${callback.origin}${callback.pathname} answered ${res.status}`);
