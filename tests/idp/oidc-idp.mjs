// A real OpenID Connect provider for the end-to-end tests: panva's oidc-provider (a certified
// OP) with static users and a plain login form instead of its development screens.
//
//   IDP_HOST=127.0.0.9 IDP_CLIENTS='[...]' IDP_USERS='{...}' node oidc-idp.mjs
//
// It prints "IdP ready <issuer>" once it listens (port chosen by the system). Users are
// {"alice": {"password": "...", "claims": {"email": ..., "groups": [...]}}}; clients are
// oidc-provider client metadata. Besides the provider's own endpoints it serves:
//   GET  /interaction/:uid        the login form (fields login, password)
//   POST /interaction/:uid/login  checks the password and finishes the interaction
//   POST /_test/tamper?mode=M     test control: from now on, rewrite ID tokens the token
//                                 endpoint returns (aud, iss, exp, nonce, sig, or off), so
//                                 the tests can prove the relying party refuses each.
import http from 'node:http';
import { URLSearchParams } from 'node:url';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const host = process.env.IDP_HOST || '127.0.0.1';
const users = JSON.parse(process.env.IDP_USERS || '{}');
const clients = JSON.parse(process.env.IDP_CLIENTS || '[]');

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signing = { ...(await jose.exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
const { privateKey: otherKey } = await jose.generateKeyPair('RS256', { extractable: true });
let tamper = 'off';

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (c) => {
      data += c;
      if (data.length > 65536) reject(new Error('body too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(data)));
    req.on('error', reject);
  });
}

const server = http.createServer();
await new Promise((resolve) => server.listen(0, host, resolve));
const issuer = `http://${host}:${server.address().port}`;

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signing] },
  scopes: ['openid', 'email', 'groups', 'offline_access'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups', 'logins'] },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['tp-test-cookie-key'] },
  pkce: { required: () => false },
  findAccount: async (ctx, id) =>
    users[id] ? { accountId: id, claims: async () => ({ sub: id, ...users[id].claims }) } : undefined,
  // Consent is not what these tests are about: grant every requested scope and claim.
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email groups');
    grant.addOIDCClaims(['sub', 'email', 'email_verified', 'groups', 'logins']);
    await grant.save();
    return grant;
  },
});
provider.proxy = false;

// The tamper switch rewrites the ID token after the provider made it.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path !== '/token' || tamper === 'off' || !ctx.body || !ctx.body.id_token) return;
  const claims = jose.decodeJwt(ctx.body.id_token);
  let key = privateKey;
  if (tamper === 'aud') claims.aud = 'someone-else';
  if (tamper === 'iss') claims.iss = 'http://127.0.0.1:1/not-this-issuer';
  if (tamper === 'exp') { claims.iat -= 7200; claims.exp = Math.floor(Date.now() / 1000) - 3600; }
  if (tamper === 'nonce') claims.nonce = 'not-the-nonce';
  if (tamper === 'sig') key = otherKey;
  ctx.body = { ...ctx.body, id_token: await new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'test-key' }).sign(key) };
});

const callback = provider.callback();
server.on('request', async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (req.method === 'POST' && url.pathname === '/_test/tamper') {
      tamper = url.searchParams.get('mode') || 'off';
      res.end(`tamper ${tamper}\n`);
      return;
    }
    const m = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
    if (m && req.method === 'GET' && !m[2]) {
      const details = await provider.interactionDetails(req, res);
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.end(`<!doctype html><html><body><h1>Sign in to the test IdP</h1>
<p>Prompt: ${esc(details.prompt.name)}</p>
<form method="post" action="/interaction/${esc(details.uid)}/login">
<input name="login"> <input name="password" type="password"> <button>Sign in</button>
</form></body></html>`);
      return;
    }
    if (m && req.method === 'POST' && m[2]) {
      const form = await readBody(req);
      const login = form.get('login');
      const user = users[login];
      if (!user || user.password !== form.get('password')) {
        res.statusCode = 401;
        res.setHeader('Content-Type', 'text/html; charset=utf-8');
        res.end('<!doctype html><html><body><p id="error">Invalid user name or password.</p></body></html>');
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
      return;
    }
    callback(req, res);
  } catch (e) {
    res.statusCode = 500;
    res.end(String(e && e.message));
  }
});

process.on('SIGTERM', () => process.exit(0));
console.log(`IdP ready ${issuer}`);
