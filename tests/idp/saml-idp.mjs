// A real SAML 2.0 identity provider for the end-to-end tests: samlify builds and signs the
// responses (RSA-SHA256, exclusive canonicalization, the assertion signed), we add the HTTP:
//
//   IDP_HOST=127.0.0.9 IDP_SP_ENTITY_ID=https://proxy/v1/webapi/saml/acs/x IDP_ACS=... \
//   IDP_USERS='{"alice": {"password": "...", "attributes": {"groups": ["admins"]}}}' node saml-idp.mjs
//
// It prints "IdP ready <base URL>" once it listens. Endpoints:
//   GET  /metadata        the IdP's entity descriptor (signing certificate, HTTP-Redirect SSO)
//   GET  /sso             an AuthnRequest (HTTP-Redirect binding) → the login form
//   POST /sso/login       checks the password → an auto-submitting form posting SAMLResponse
//                         and RelayState to the SP's ACS (HTTP-POST binding)
//   POST /_test/tamper?mode=M  test control: the next responses say audience=another SP,
//                         expired (validity in the past), or off; still properly signed, so
//                         the SP must refuse them on their content.
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';

const require = createRequire(import.meta.url);
const saml = require('samlify');
saml.setSchemaValidator({ validate: () => Promise.resolve('skipped in tests') });

const host = process.env.IDP_HOST || '127.0.0.1';
const users = JSON.parse(process.env.IDP_USERS || '{}');
const spEntityId = process.env.IDP_SP_ENTITY_ID;
const acs = process.env.IDP_ACS;
let tamper = 'off';

const dir = mkdtempSync(join(tmpdir(), 'tp-saml-idp-'));
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=tp-test-saml-idp', '-days', '2',
  '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
const privateKey = readFileSync(join(dir, 'key.pem'));
const signingCert = readFileSync(join(dir, 'cert.pem'));

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (c) => {
      data += c;
      if (data.length > 262144) reject(new Error('body too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(data)));
    req.on('error', reject);
  });
}

const server = http.createServer();
await new Promise((resolve) => server.listen(0, host, resolve));
const base = `http://${host}:${server.address().port}`;

const binding = saml.Constants.namespace.binding;
const idp = saml.IdentityProvider({
  entityID: `${base}/metadata`,
  privateKey,
  signingCert,
  isAssertionEncrypted: false,
  wantAuthnRequestsSigned: false,
  singleSignOnService: [{ Binding: binding.redirect, Location: `${base}/sso` }],
});
const sp = saml.ServiceProvider({
  entityID: spEntityId,
  assertionConsumerService: [{ Binding: binding.post, Location: acs }],
  wantAssertionsSigned: true,
  authnRequestsSigned: false,
});

function attributeStatement(attrs) {
  const one = ([name, values]) =>
    `<saml:Attribute Name="${esc(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">` +
    values.map((v) => `<saml:AttributeValue xsi:type="xs:string">${esc(v)}</saml:AttributeValue>`).join('') +
    '</saml:Attribute>';
  return `<saml:AttributeStatement>${Object.entries(attrs).map(one).join('')}</saml:AttributeStatement>`;
}

async function response(requestId, login) {
  const now = new Date();
  const later = new Date(now.getTime() + 5 * 60 * 1000);
  const past = new Date(now.getTime() - 60 * 60 * 1000);
  const id = '_' + Math.random().toString(16).slice(2) + Date.now().toString(16);
  const values = {
    ID: id,
    AssertionID: '_a' + Math.random().toString(16).slice(2),
    Destination: acs,
    Audience: tamper === 'audience' ? 'https://another-sp.example.com/acs' : spEntityId,
    SubjectRecipient: acs,
    Issuer: `${base}/metadata`,
    IssueInstant: (tamper === 'expired' ? past : now).toISOString(),
    StatusCode: 'urn:oasis:names:tc:SAML:2.0:status:Success',
    ConditionsNotBefore: (tamper === 'expired' ? new Date(past.getTime() - 60000) : now).toISOString(),
    ConditionsNotOnOrAfter: (tamper === 'expired' ? past : later).toISOString(),
    SubjectConfirmationDataNotOnOrAfter: (tamper === 'expired' ? past : later).toISOString(),
    NameIDFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
    NameID: login,
    InResponseTo: requestId,
    AuthnStatement: 'TP_AUTHN_STATEMENT',
    AttributeStatement: 'TP_ATTRIBUTE_STATEMENT',
  };
  // samlify escapes every value; the two statements are XML, put in after.
  const fragments = {
    TP_AUTHN_STATEMENT: `<saml:AuthnStatement AuthnInstant="${now.toISOString()}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`,
    TP_ATTRIBUTE_STATEMENT: attributeStatement(users[login].attributes || {}),
  };
  const { context } = await idp.createLoginResponse(sp, { extract: { request: { id: requestId } } }, 'post', { email: login }, (template) => ({
    id,
    context: saml.SamlLib.replaceTagsByValue(template, values).replace(/TP_(AUTHN|ATTRIBUTE)_STATEMENT/g, (m) => fragments[m] ?? m),
  }));
  return context;
}

server.on('request', async (req, res) => {
  try {
    const url = new URL(req.url, base);
    const html = (status, body) => {
      res.statusCode = status;
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.end(`<!doctype html><html><body>${body}</body></html>`);
    };
    if (req.method === 'POST' && url.pathname === '/_test/tamper') {
      tamper = url.searchParams.get('mode') || 'off';
      res.end(`tamper ${tamper}\n`);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/metadata') {
      res.setHeader('Content-Type', 'application/samlmetadata+xml');
      res.end(idp.getMetadata());
      return;
    }
    if (req.method === 'GET' && url.pathname === '/sso') {
      const query = Object.fromEntries(url.searchParams);
      const parsed = await idp.parseLoginRequest(sp, 'redirect', { query, octetString: '' });
      const requestId = parsed.extract.request.id;
      html(200, `<h1>Sign in to the test SAML IdP</h1>
<form method="post" action="/sso/login">
<input type="hidden" name="request_id" value="${esc(requestId)}">
<input type="hidden" name="RelayState" value="${esc(query.RelayState || '')}">
<input name="login"> <input name="password" type="password"> <button>Sign in</button></form>`);
      return;
    }
    if (req.method === 'POST' && url.pathname === '/sso/login') {
      const form = await readBody(req);
      const login = form.get('login');
      const user = users[login];
      if (!user || user.password !== form.get('password')) {
        html(401, '<p id="error">Invalid user name or password.</p>');
        return;
      }
      const samlResponse = await response(form.get('request_id'), login);
      html(200, `<form method="post" action="${esc(acs)}" id="saml">
<input type="hidden" name="SAMLResponse" value="${esc(samlResponse)}">
<input type="hidden" name="RelayState" value="${esc(form.get('RelayState') || '')}">
<noscript><button>Continue</button></noscript></form><script>document.getElementById('saml').submit()</script>`);
      return;
    }
    html(404, 'not found');
  } catch (e) {
    res.statusCode = 500;
    res.end(String(e && e.stack || e));
  }
});

process.on('SIGTERM', () => process.exit(0));
console.log(`IdP ready ${base}`);
