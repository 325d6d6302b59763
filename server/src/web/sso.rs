//! The browser's side of SSO: the identity providers' callbacks (for tsh's console logins and
//! the web UI's alike), the web UI's sign-in, and the two pages a browser ends on. Registered
//! under `/webapi` and `/v1/webapi` (Teleport's clients use both), on the public listener only.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use shared::error::Error;

use super::WebState;
use crate::api::ClientAddr;
use crate::api::ratelimit::Class;
use crate::sso::{Outcome, SsoRequest};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>{t}</h1><p id=\"message\">{m}</p></body></html>",
        t = escape(title),
        m = escape(message)
    );
    let mut r = (status, Html(body)).into_response();
    super::security_headers(r.headers_mut());
    r
}

fn finish(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Web { cookie, location } => {
            let clear = format!("{}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=None", crate::sso::BINDING_COOKIE);
            let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, location), (header::CACHE_CONTROL, "no-store".into())]).into_response();
            for c in [cookie, clear] {
                if let Ok(v) = c.parse() {
                    r.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            r
        }
        Outcome::Redirect(url) => {
            (StatusCode::FOUND, [(header::LOCATION, url), (header::CACHE_CONTROL, "no-store".into())]).into_response()
        }
        Outcome::Page(msg) => page(StatusCode::BAD_REQUEST, "Login failed", &msg),
    }
}

async fn take(s: &WebState, kind: &str, id: &str, headers: &HeaderMap) -> Result<SsoRequest, Error> {
    let req = s.auth.take_sso_request(id).await?;
    if req.kind != kind {
        return Err(Error::access_denied("this login request belongs to another kind of connector"));
    }
    // A web sign-in must end in the browser that started it.
    if let Some(web) = &req.web {
        let cookie = super::session::cookie_named(headers, crate::sso::BINDING_COOKIE).unwrap_or_default();
        if cookie.is_empty() || crate::sso::binding_hash(&cookie) != web.binding {
            return Err(Error::access_denied(
                "this sign-in was started in another browser (or its cookie was lost); start it again from the sign-in page",
            ));
        }
    }
    Ok(req)
}

/// `GET /webapi/<kind>/login/web?connector_id=NAME&redirect_url=PATH`: a web UI sign-in.
pub async fn web_login(
    State(s): State<Arc<WebState>>,
    Path(kind): Path<String>,
    addr: ClientAddr,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if !matches!(kind.as_str(), "oidc" | "github" | "saml") {
        return page(StatusCode::NOT_FOUND, "Not found", "no such endpoint");
    }
    let _pass = match admit(&s, Class::Login, &addr).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let query = shared::sso::parse_query(q.as_deref().unwrap_or_default());
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let connector = get("connector_id");
    let next = super::safe_next(&get("redirect_url"));
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or(&s.ping.public_addr).to_string();
    match s.auth.sso_web_login(&kind, &connector, &next, &host).await {
        Ok((url, binding)) => {
            let cookie = format!("{}={binding}; Path=/; Max-Age=600; HttpOnly; Secure; SameSite=None", crate::sso::BINDING_COOKIE);
            (StatusCode::FOUND, [(header::LOCATION, url), (header::SET_COOKIE, cookie), (header::CACHE_CONTROL, "no-store".into())])
                .into_response()
        }
        Err(e) => {
            s.auth.sso_failed(&kind, &connector, &e.message).await;
            page(StatusCode::from_u16(e.kind.http_status()).unwrap_or(StatusCode::BAD_REQUEST), "Login failed", &e.message)
        }
    }
}

/// The per-address rate limit of `class`, then a place in the SSO gate; or the page that says
/// why not (429).
async fn admit<'a>(s: &'a WebState, class: Class, addr: &ClientAddr) -> Result<crate::gate::Pass<'a>, Response> {
    if let Err(e) = s.limiter.check(class, &addr.key()) {
        return Err(page(StatusCode::TOO_MANY_REQUESTS, "Login failed", &e.message));
    }
    s.sso_gate.enter().await.map_err(|e| page(StatusCode::TOO_MANY_REQUESTS, "Login failed", &e.message))
}

/// `GET /webapi/oidc/callback` and `GET /webapi/github/callback`.
pub async fn callback(
    State(s): State<Arc<WebState>>,
    Path(kind): Path<String>,
    addr: ClientAddr,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if !matches!(kind.as_str(), "oidc" | "github") {
        return page(StatusCode::NOT_FOUND, "Not found", "no such endpoint");
    }
    let _pass = match admit(&s, Class::Sso, &addr).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let query = shared::sso::parse_query(q.as_deref().unwrap_or_default());
    let state = query.iter().find(|(k, _)| k == "state").map(|(_, v)| v.clone()).unwrap_or_default();
    let req = match take(&s, &kind, &state, &headers).await {
        Ok(r) => r,
        Err(e) => {
            s.auth.sso_failed(&kind, "", &e.message).await;
            return finish(Outcome::Page(e.message));
        }
    };
    let result = async {
        let connector = s.auth.connector(&req.kind, &req.connector).await?;
        match kind.as_str() {
            "oidc" => crate::sso::oidc::callback(&connector.oidc()?, &req, &query).await,
            _ => crate::sso::github::callback(&connector.github()?, &req, &query).await,
        }
    }
    .await;
    finish(s.auth.sso_outcome(Some(&req), result).await)
}

/// `POST /webapi/saml/acs[/<connector>]`: the identity provider's response, through the browser.
pub async fn acs(
    State(s): State<Arc<WebState>>,
    connector: Option<Path<String>>,
    addr: ClientAddr,
    headers: HeaderMap,
    body: String,
) -> Response {
    let _pass = match admit(&s, Class::Sso, &addr).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let form = shared::sso::parse_query(&body);
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let named = connector.map(|Path(c)| c).unwrap_or_default();
    let xml = match crate::sso::saml::decode_response(&get("SAMLResponse")) {
        Ok(x) => x,
        Err(e) => {
            s.auth.sso_failed("saml", &named, &e.message).await;
            return finish(Outcome::Page(e.message));
        }
    };
    let req = match crate::sso::saml::in_response_to(&xml) {
        Ok(id) => match take(&s, "saml", &id, &headers).await {
            Ok(r) => r,
            Err(e) => {
                s.auth.sso_failed("saml", &named, &e.message).await;
                return finish(Outcome::Page(e.message));
            }
        },
        Err(e) => {
            s.auth.sso_failed("saml", &named, &e.message).await;
            return finish(Outcome::Page(e.message));
        }
    };
    let result = async {
        if !named.is_empty() && named != req.connector {
            return Err(Error::access_denied(format!(
                "the response was posted to the ACS of connector {named:?}, not {:?}",
                req.connector
            )));
        }
        let relay = get("RelayState");
        if !relay.is_empty() && relay != req.id {
            return Err(Error::access_denied("the RelayState does not match the login request"));
        }
        let connector = s.auth.connector("saml", &req.connector).await?;
        crate::sso::saml::callback(&connector.saml()?, &req, &xml, s.auth.clock.now()).await
    }
    .await;
    finish(s.auth.sso_outcome(Some(&req), result).await)
}

/// `GET /web/msg/info/login_success`.
pub async fn login_success() -> Response {
    page(StatusCode::OK, "Login successful", "You are signed in. You can close this window and return to the terminal.")
}

/// `GET /web/msg/error/login` (and its `callback`/`auth` variants).
pub async fn login_error(RawQuery(q): RawQuery) -> Response {
    let query = shared::sso::parse_query(q.as_deref().unwrap_or_default());
    let detail = query.iter().find(|(k, _)| k == "message").map(|(_, v)| v.clone());
    page(StatusCode::OK, "Login failed", detail.as_deref().unwrap_or(shared::sso::LOGIN_FAILED))
}
