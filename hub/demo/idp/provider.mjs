// hpchub development identity provider: a real OpenID Connect provider (npm
// `oidc-provider`, pinned in package.json) on loopback, for `make demo` and the tests.
//
//   node provider.mjs --config CONFIG.json [--modules DIR]
//
// CONFIG.json:
//   issuer        "http://127.0.0.1:5556" (http only on a loopback host)
//   host, port    where to listen (host must be loopback for an http issuer)
//   clients       [{client_id, client_secret, redirect_uris, post_logout_redirect_uris?,
//                   client_name?}], client auth client_secret_post, code flow + PKCE S256
//   accounts_file JSON file {"accounts": [{username, password, sub, name, email,
//                   email_verified?, groups}]}; re-read on every lookup
//   jwks_file     RS256 private JWK set; generated (mode 0600) when missing
//   cookie_keys   list of secrets signing the provider's cookies
//   ttl           optional {AccessToken, AuthorizationCode, IdToken, RefreshToken,
//                   Session, Grant, Interaction} in seconds
//
// The login form (GET /interaction/UID) posts `username` and `password` to
// /interaction/UID/login; consent is given automatically for the registered clients.
// oidc-provider's module is looked up in --modules DIR, $HPCHUB_IDP_MODULES, ./node_modules
// beside this script, then /opt/hpchub/idp/node_modules.
// Logs: one line per login outcome; never tokens, passwords or query strings.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCOPES = ['openid', 'offline_access', 'profile', 'email', 'groups'];
const CLAIMS = {
  openid: ['sub'],
  profile: ['name', 'preferred_username'],
  email: ['email', 'email_verified'],
  groups: ['groups'],
};
const DEFAULT_TTL = {
  AccessToken: 600,
  AuthorizationCode: 60,
  IdToken: 600,
  RefreshToken: 14 * 24 * 3600,
  Session: 14 * 24 * 3600,
  Grant: 14 * 24 * 3600,
  Interaction: 3600,
};
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

function log(msg) {
  process.stdout.write(`${new Date().toISOString()} hpchub-idp ${msg}\n`);
}

function fail(msg) {
  process.stderr.write(`hpchub-idp: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (a === '--config' || a === '--modules') {
      if (i + 1 >= argv.length) fail(`${a} needs a value`);
      out[a.slice(2)] = argv[i + 1];
      i += 1;
    } else if (a.startsWith('--config=')) {
      out.config = a.slice('--config='.length);
    } else if (a.startsWith('--modules=')) {
      out.modules = a.slice('--modules='.length);
    } else {
      fail(`unknown argument ${JSON.stringify(a)}; usage: node provider.mjs --config CONFIG.json [--modules DIR]`);
    }
  }
  if (!out.config) fail('usage: node provider.mjs --config CONFIG.json [--modules DIR]');
  return out;
}

function readJson(file, what) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    fail(`cannot read ${what} ${file}: ${err.message}`);
  }
  return undefined;
}

function loadConfig(file) {
  const cfg = readJson(file, 'config');
  if (!cfg || typeof cfg !== 'object') fail('config must be a JSON object');
  for (const key of ['issuer', 'port', 'clients', 'accounts_file', 'jwks_file', 'cookie_keys']) {
    if (cfg[key] === undefined) fail(`config is missing "${key}"`);
  }
  let issuer;
  try {
    issuer = new URL(cfg.issuer);
  } catch {
    fail(`issuer ${JSON.stringify(cfg.issuer)} is not a URL`);
  }
  if (!['http:', 'https:'].includes(issuer.protocol) || issuer.search || issuer.hash) {
    fail('issuer must be an http(s) URL without query or fragment');
  }
  cfg.host = cfg.host || '127.0.0.1';
  if (issuer.protocol === 'http:' && !(LOOPBACK.has(issuer.hostname) && LOOPBACK.has(cfg.host))) {
    fail('an http:// issuer is only allowed on loopback (issuer host and listen host)');
  }
  if (!Number.isInteger(cfg.port) || cfg.port < 1 || cfg.port > 65535) fail('port must be an integer 1..65535');
  if (!Array.isArray(cfg.clients) || !cfg.clients.length) fail('clients must be a non-empty list');
  for (const c of cfg.clients) {
    if (typeof c.client_id !== 'string' || !c.client_id) fail('each client needs a client_id');
    if (typeof c.client_secret !== 'string' || c.client_secret.length < 16) {
      fail(`client ${c.client_id}: client_secret must be a string of at least 16 characters`);
    }
    if (!Array.isArray(c.redirect_uris) || !c.redirect_uris.length) fail(`client ${c.client_id}: redirect_uris must be a non-empty list`);
  }
  if (!Array.isArray(cfg.cookie_keys) || !cfg.cookie_keys.length
      || cfg.cookie_keys.some((k) => typeof k !== 'string' || k.length < 16)) {
    fail('cookie_keys must be a non-empty list of strings of at least 16 characters');
  }
  cfg.ttl = { ...DEFAULT_TTL, ...(cfg.ttl || {}) };
  for (const [k, v] of Object.entries(cfg.ttl)) {
    if (!(k in DEFAULT_TTL)) fail(`ttl: unknown key ${k}`);
    if (!Number.isInteger(v) || v < 1) fail(`ttl.${k} must be a positive integer (seconds)`);
  }
  cfg.issuer = issuer.href.replace(/\/$/, '');
  return cfg;
}

async function importProvider(modulesDir) {
  const candidates = [modulesDir, process.env.HPCHUB_IDP_MODULES, path.join(HERE, 'node_modules'),
    '/opt/hpchub/idp/node_modules'].filter(Boolean);
  for (const dir of candidates) {
    const entry = path.join(dir, 'oidc-provider', 'lib', 'index.js');
    if (fs.existsSync(entry)) {
      const mod = await import(pathToFileURL(entry).href);
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'oidc-provider', 'package.json'), 'utf8'));
      return { Provider: mod.default, version: pkg.version, dir };
    }
  }
  fail(`oidc-provider not found in ${candidates.join(', ')}; run npm ci in the directory holding package.json`);
  return undefined;
}

// ---- signing key -------------------------------------------------------------

function jwkThumbprint(jwk) {
  const canonical = JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n });
  return crypto.createHash('sha256').update(canonical).digest('base64url');
}

function loadOrCreateJwks(file) {
  if (fs.existsSync(file)) {
    const jwks = readJson(file, 'jwks_file');
    if (!jwks || !Array.isArray(jwks.keys) || !jwks.keys.length || !jwks.keys.every((k) => k.d)) {
      fail(`${file} is not a private JWK set`);
    }
    const mode = fs.statSync(file).mode & 0o777;
    if (mode & 0o077) log(`warning: ${file} has mode ${mode.toString(8)}, expected 600`);
    return jwks;
  }
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  jwk.kid = jwkThumbprint(jwk);
  jwk.alg = 'RS256';
  jwk.use = 'sig';
  const jwks = { keys: [jwk] };
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  fs.renameSync(tmp, file);
  log(`generated signing key kid=${jwk.kid} in ${file}`);
  return jwks;
}

// ---- accounts (re-read on every lookup, so tests can rewrite the file) ---------

function readAccounts(file) {
  let data;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    log(`error: cannot read accounts file: ${err.message}`);
    return [];
  }
  const list = Array.isArray(data) ? data : data.accounts;
  return Array.isArray(list) ? list.filter((a) => a && typeof a.username === 'string') : [];
}

function normalizeUsername(u) {
  return String(u || '').trim().toLowerCase();
}

function subOf(account) {
  return String(account.sub || account.username);
}

function findBySub(file, sub) {
  return readAccounts(file).find((a) => subOf(a) === sub);
}

function safeEqual(a, b) {
  const ha = crypto.createHash('sha256').update(String(a)).digest();
  const hb = crypto.createHash('sha256').update(String(b)).digest();
  return crypto.timingSafeEqual(ha, hb);
}

function checkLogin(file, username, password) {
  const wanted = normalizeUsername(username);
  const account = readAccounts(file).find((a) => normalizeUsername(a.username) === wanted);
  // Compare even when the account is unknown, so timing does not tell which names exist.
  const ok = safeEqual(account ? account.password : '\0no-account', password || '');
  return account && ok && typeof account.password === 'string' && account.password ? account : undefined;
}

function accountClaims(account) {
  return {
    sub: subOf(account),
    name: account.name,
    preferred_username: account.preferred_username || account.username,
    email: account.email || account.username,
    email_verified: account.email_verified !== undefined ? Boolean(account.email_verified) : true,
    groups: Array.isArray(account.groups) ? account.groups.map(String) : [],
  };
}

// A user name or id safe for a log line (no control characters, bounded length).
function logSafe(s) {
  return JSON.stringify(String(s ?? '').slice(0, 100));
}

// ---- HTML --------------------------------------------------------------------

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

const STYLE = `body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}
.box{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:6px;box-shadow:0 1px 4px rgba(0,0,0,.2)}
h1{font-size:1.3rem;margin-top:0}label{display:block;margin:.8rem 0 .2rem}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}
button{margin-top:1rem;padding:.5rem 1rem;font-size:1rem}
.error{color:#b00020;font-weight:600}.note{color:#555;font-size:.85rem}`;

function page(title, body) {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title>
<style>${STYLE}</style></head><body><div class="box">${body}</div></body></html>`;
}

function loginPage(uid, clientName, { error, username } = {}) {
  return page('Sign in - hpchub demo identity provider', `
<h1>Sign in</h1>
<p class="note">hpchub demo identity provider, signing in to <b>${esc(clientName)}</b>. Demo accounts only.</p>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="${esc(username)}" placeholder="alice@uni.example" autofocus required>
<label for="password">Password</label>
<input type="password" id="password" name="password" required>
<button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button type="submit" class="note">Cancel</button></form>`);
}

function send(res, status, html, headers = {}) {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Frame-Options': 'DENY',
    ...headers,
  });
  res.end(html);
}

function readForm(req, limit = 16 * 1024) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error('form too large'));
        req.destroy();
      } else {
        chunks.push(chunk);
      }
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

// ---- main --------------------------------------------------------------------

async function main() {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 20) fail(`Node ${process.versions.node} is too old; oidc-provider 9 needs Node 20.19+ (22 recommended)`);
  const args = parseArgs(process.argv.slice(2));
  const cfg = loadConfig(args.config);
  const { Provider, version } = await importProvider(args.modules);
  const jwks = loadOrCreateJwks(cfg.jwks_file);
  const accountsFile = cfg.accounts_file;
  if (!fs.existsSync(accountsFile)) fail(`accounts_file ${accountsFile} does not exist`);

  const clients = cfg.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    client_name: c.client_name || c.client_id,
    redirect_uris: c.redirect_uris,
    post_logout_redirect_uris: c.post_logout_redirect_uris || [],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
    id_token_signed_response_alg: 'RS256',
  }));
  const clientIds = new Set(clients.map((c) => c.client_id));
  const ttl = cfg.ttl;

  const configuration = {
    clients,
    jwks,
    cookies: { keys: cfg.cookie_keys },
    scopes: SCOPES,
    claims: CLAIMS,
    // Scope-derived claims (email, preferred_username, groups) go into the ID token
    // too, not only into userinfo.
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    pkce: { required: () => true },
    // Refresh tokens whenever the client may use the refresh_token grant (not only with
    // offline_access + prompt=consent). Without offline_access they end with the session.
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
      id_token_signed_response_alg: 'RS256',
    },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = page('Sign out', `<h1>Sign out of the demo identity provider?</h1>${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Sign out</button>
<button type="submit" form="op.logoutForm">Stay signed in</button>`);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = page('Signed out', '<h1>Signed out</h1><p>You are signed out of the demo identity provider.</p>');
        },
      },
    },
    interactions: { url: async (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const account = findBySub(accountsFile, sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        // Read again here, so a refresh or userinfo after the file changed sees the change.
        async claims() {
          const current = findBySub(accountsFile, sub) || account;
          return accountClaims(current);
        },
      };
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error', `<h1>Sign-in error</h1><p class="error">${esc(out.error)}</p>
<p>${esc(out.error_description)}</p>`);
    },
    ttl: {
      AccessToken: ttl.AccessToken,
      AuthorizationCode: ttl.AuthorizationCode,
      IdToken: ttl.IdToken,
      RefreshToken: ttl.RefreshToken,
      Session: ttl.Session,
      Grant: ttl.Grant,
      Interaction: ttl.Interaction,
    },
  };

  const provider = new Provider(cfg.issuer, configuration);
  provider.proxy = false;
  provider.on('server_error', (ctx, err) => log(`server error: ${err.name}: ${err.message}`));

  async function autoConsent(req, res, details) {
    const { prompt: { details: missing }, params, session } = details;
    let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    if (!grant) grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    const consent = details.grantId ? {} : { grantId };
    await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
  }

  async function handleInteraction(req, res, uid, action) {
    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch (err) {
      send(res, 400, page('Sign-in expired', `<h1>This sign-in has expired</h1>
<p>Go back to the portal and start the login again.</p>`));
      return;
    }
    if (details.uid !== uid) {
      send(res, 400, page('Sign-in mismatch', '<h1>This sign-in does not match your browser session</h1><p>Start the login again.</p>'));
      return;
    }
    const clientId = details.params.client_id;
    const client = await provider.Client.find(clientId);
    const clientName = client?.clientName || clientId;
    const prompt = details.prompt.name;

    if (req.method === 'GET' && !action) {
      if (prompt === 'login') {
        send(res, 200, loginPage(uid, clientName, { username: details.params.login_hint }));
      } else if (prompt === 'consent' && clientIds.has(clientId)) {
        await autoConsent(req, res, details);
      } else {
        send(res, 400, page('Unsupported', `<h1>Unsupported sign-in step</h1><p>${esc(prompt)}</p>`));
      }
      return;
    }
    if (req.method === 'POST' && action === 'login' && prompt === 'login') {
      let form;
      try {
        form = await readForm(req);
      } catch {
        send(res, 413, page('Error', '<h1>Request too large</h1>'));
        return;
      }
      const username = form.get('username') || '';
      const account = checkLogin(accountsFile, username, form.get('password'));
      if (!account) {
        // Name only a known account: an unknown "user name" may be a mistyped password.
        const known = readAccounts(accountsFile).some((a) => normalizeUsername(a.username) === normalizeUsername(username));
        const who = known ? logSafe(normalizeUsername(username)) : '(unknown)';
        log(`login failed user=${who} client=${logSafe(clientId)} reason=invalid-credentials`);
        send(res, 401, loginPage(uid, clientName, { error: 'Invalid username or password', username }));
        return;
      }
      log(`login ok user=${logSafe(account.username)} sub=${logSafe(subOf(account))} client=${logSafe(clientId)}`);
      await provider.interactionFinished(req, res, {
        login: { accountId: subOf(account), amr: ['pwd'] },
      }, { mergeWithLastSubmission: false });
      return;
    }
    if (req.method === 'POST' && action === 'abort') {
      log(`login aborted client=${logSafe(clientId)}`);
      await provider.interactionFinished(req, res, {
        error: 'access_denied', error_description: 'End-User aborted interaction',
      }, { mergeWithLastSubmission: false });
      return;
    }
    send(res, 405, page('Error', '<h1>Not allowed</h1>'), { Allow: 'GET, POST' });
  }

  const providerCallback = provider.callback();
  const server = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://local');
    const m = pathname.match(/^\/interaction\/([A-Za-z0-9_-]{1,64})(?:\/(login|abort))?\/?$/);
    if (m) {
      handleInteraction(req, res, m[1], m[2]).catch((err) => {
        log(`interaction error: ${err.name}: ${err.message}`);
        if (!res.headersSent) send(res, 500, page('Error', '<h1>Internal error</h1>'));
        else res.end();
      });
      return;
    }
    providerCallback(req, res);
  });

  server.on('error', (err) => fail(`cannot listen on ${cfg.host}:${cfg.port}: ${err.message}`));
  server.listen(cfg.port, cfg.host, () => {
    log(`oidc-provider ${version} listening on ${cfg.host}:${cfg.port}, issuer ${cfg.issuer}, `
      + `clients ${[...clientIds].join(',')}, node ${process.versions.node}`);
  });

  const stop = (signal) => {
    log(`stopping (${signal})`);
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`hpchub-idp: ${err.stack || err}\n`);
  process.exit(1);
});
