//! The web UI's Access Requests page (`/web/requests`): make a request with a reason, see the
//! requests one made or may review with who reviewed them, approve or deny with a reason, and
//! "assume" an approved request (the web session's certificate gains its roles until it ends;
//! every page then shows a banner) or switch back. Everything goes through the root's API as
//! the signed-in user, as `tsh request` does.

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use shared::api::{CreateAccessRequest, ReviewAccessRequest, path};
use shared::client::encode_segment;
use shared::error::{Error, Result};
use shared::resource::{AccessRequest, RequestState};

use super::pages::{error_page, nav, page, respond};
use super::{Web, WebSession, WebState, check_form, session};

/// The access requests a web session's certificate carries, and its end, when it carries any.
pub fn elevated(sess: &WebSession) -> Option<(Vec<String>, String)> {
    let der = shared::certs::first_pem_der(&sess.certs.tls_cert, "CERTIFICATE").ok()?;
    let peer = shared::certs::parse_peer_cert(&der).ok()?;
    let ids = peer.user()?.active_requests;
    let until = time::OffsetDateTime::from_unix_timestamp(peer.not_after).ok().map(shared::timefmt::rfc822)?;
    (!ids.is_empty()).then_some((ids, until))
}

/// `POST /web/requests`.
#[derive(Deserialize)]
pub struct NewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    roles: String,
    #[serde(default)]
    reason: String,
}

/// `POST /web/requests/<id>/review`.
#[derive(Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
}

/// A form with only its CSRF token.
#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `GET /web/requests`.
pub async fn list(State(s): State<Arc<WebState>>, Web(sess): Web) -> Response {
    show(&s, sess, None, StatusCode::OK).await
}

async fn show(s: &WebState, mut sess: WebSession, notice: Option<std::result::Result<String, Error>>, status: StatusCode) -> Response {
    let root = s.auth.cluster_name().to_string();
    let result = async { super::api(s, &mut sess, &root).await?.get::<Vec<AccessRequest>>(path::ACCESS_REQUESTS).await }.await;
    let active = elevated(&sess).map(|(ids, _)| ids).unwrap_or_default();
    let csrf = sess.csrf.clone();
    let nav = nav(s, &mut sess, &root, "requests").await;
    let list = match result {
        Ok(l) => l,
        Err(e) => return error_page(Some(&nav), &e),
    };
    let me = nav_user(&nav);
    let body = html! {
        main {
            div.card {
                h1 { "Access Requests" }
                @match &notice {
                    Some(Ok(n)) => div.notice role="status" { (n) },
                    Some(Err(e)) => div.error role="alert" { (e.message) },
                    None => {},
                }
                @if !active.is_empty() {
                    form method="post" action="/web/requests/drop" {
                        input type="hidden" name="csrf" value=(csrf);
                        button #switch-back type="submit" { "Switch back to your own roles" }
                    }
                }
                h2 { "New request" }
                form #new-request method="post" action="/web/requests" {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Roles " input name="roles" placeholder="prod-access" required; }
                    label { "Reason " input name="reason" placeholder="why you need it"; }
                    button type="submit" { "Request" }
                }
                h2 { "Requests" }
                @if list.is_empty() { p.muted #no-requests { "No requests you made or may review." } }
                table #requests {
                    thead { tr { th { "ID" } th { "User" } th { "Roles" } th { "Reason" } th { "Status" } th { "Reviews" } th {} } }
                    tbody {
                        @for r in &list {
                            @let base = format!("/web/requests/{}", encode_segment(r.id()));
                            tr data-id=(r.id()) data-state=(r.spec.state.as_str()) {
                                td.muted { code { (r.id()) } }
                                td { (r.spec.user) }
                                td { (r.spec.roles.join(", ")) }
                                td { (r.spec.request_reason) }
                                td.state { (r.spec.state.as_str()) }
                                td.reviews {
                                    @for rev in &r.spec.reviews {
                                        span.pill { (rev.author) ": " (rev.proposed_state.as_str()) @if !rev.reason.is_empty() { " (" (rev.reason) ")" } }
                                    }
                                }
                                td {
                                    @if r.spec.user != me && r.spec.state == RequestState::Pending && !r.spec.reviews.iter().any(|x| x.author == me) {
                                        form.review method="post" action=(format!("{base}/review")) {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input name="reason" placeholder="reason";
                                            button.small name="decision" value="approve" type="submit" { "Approve" }
                                            button.small.danger name="decision" value="deny" type="submit" { "Deny" }
                                        }
                                    }
                                    @if r.spec.user == me && r.spec.state == RequestState::Approved && !active.iter().any(|a| a == r.id()) {
                                        form method="post" action=(format!("{base}/assume")) {
                                            input type="hidden" name="csrf" value=(csrf);
                                            button.small.assume type="submit" { "Assume" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    respond(status, page(Some(&nav), "Access Requests", body))
}

fn nav_user(n: &super::pages::Nav<'_>) -> String {
    n.sess.user.clone()
}

/// `POST /web/requests`: a new request.
pub async fn create(State(s): State<Arc<WebState>>, headers: HeaderMap, Web(mut sess): Web, Form(f): Form<NewForm>) -> Response {
    let root = s.auth.cluster_name().to_string();
    let result = async {
        check_form(&headers, &sess, &f.csrf)?;
        let roles: Vec<String> = f.roles.split(',').map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).collect();
        let req = CreateAccessRequest { roles, reason: f.reason.trim().to_string(), ..Default::default() };
        let r: AccessRequest = super::api(&s, &mut sess, &root).await?.post(path::ACCESS_REQUESTS, &req).await?;
        Ok::<_, Error>(format!("Request {} for {} is pending review.", r.id(), r.spec.roles.join(", ")))
    }
    .await;
    let status = if result.is_ok() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    show(&s, sess, Some(result), status).await
}

/// `POST /web/requests/<id>/review`: approve or deny, with a reason.
pub async fn review(
    State(s): State<Arc<WebState>>,
    headers: HeaderMap,
    Web(mut sess): Web,
    Path(id): Path<String>,
    Form(f): Form<ReviewForm>,
) -> Response {
    let root = s.auth.cluster_name().to_string();
    let result = async {
        check_form(&headers, &sess, &f.csrf)?;
        let state = match f.decision.as_str() {
            "approve" => RequestState::Approved,
            "deny" => RequestState::Denied,
            _ => return Err(Error::bad_parameter("choose Approve or Deny")),
        };
        let body = ReviewAccessRequest { state, reason: f.reason.trim().to_string() };
        let r: AccessRequest = super::api(&s, &mut sess, &root)
            .await?
            .post(&format!("{}/{}/review", path::ACCESS_REQUESTS, encode_segment(&id)), &body)
            .await?;
        Ok(format!("Review submitted. Request {} is {}.", r.id(), r.spec.state.as_str()))
    }
    .await;
    let status = if result.is_ok() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    show(&s, sess, Some(result), status).await
}

/// `POST /web/requests/<id>/assume`: the web session's certificate gains the request's roles.
pub async fn assume(
    State(s): State<Arc<WebState>>,
    headers: HeaderMap,
    Web(mut sess): Web,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let result = async {
        check_form(&headers, &sess, &f.csrf)?;
        let mut ids = elevated(&sess).map(|(ids, _)| ids).unwrap_or_default();
        if !ids.contains(&id) {
            ids.push(id.clone());
        }
        reissue(&s, &mut sess, ids).await?;
        Ok(format!("You now hold the roles of request {id}."))
    }
    .await;
    let status = if result.is_ok() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    show(&s, sess, Some(result), status).await
}

/// `POST /web/requests/drop`: back to the user's own roles.
pub async fn drop_all(State(s): State<Arc<WebState>>, headers: HeaderMap, Web(mut sess): Web, Form(f): Form<CsrfOnly>) -> Response {
    let result = async {
        check_form(&headers, &sess, &f.csrf)?;
        reissue(&s, &mut sess, Vec::new()).await?;
        Ok("You are back to your own roles.".to_string())
    }
    .await;
    let status = if result.is_ok() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    show(&s, sess, Some(result), status).await
}

/// New certificates for the web session with exactly the requests `ids`, stored with it.
async fn reissue(s: &WebState, sess: &mut WebSession, ids: Vec<String>) -> Result<()> {
    let root = s.auth.cluster_name().to_string();
    let creds = sess.credentials()?;
    let tls_key = rcgen::KeyPair::from_pem(&sess.tls_key).map_err(|e| Error::internal(format!("the session's key: {e}")))?;
    let keys = shared::api::PublicKeys {
        ssh_public_key: shared::certs::authorized_key(creds.ssh_key.public_key()),
        tls_public_key: shared::certs::spki_pem(&tls_key),
    };
    let req = shared::api::ReissueRequest {
        keys,
        route_to_cluster: None,
        ttl_seconds: 0,
        kubernetes_cluster: None,
        route_to_database: None,
        access_requests: ids,
    };
    let certs: shared::api::CertsResponse = super::api(s, sess, &root).await?.post(path::REISSUE, &req).await?;
    sess.certs = certs;
    session::save(&s.auth, sess).await
}
