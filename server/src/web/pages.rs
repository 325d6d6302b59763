//! The pages. Each renders from what the user's own API calls return (see the module above),
//! so a page shows exactly what `tsh`/`tctl` would show this user, and refuses what they would.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use serde_json::Value;
use shared::api::{ClusterInfo, SessionTracker, UpdateRemoteClusterRequest, UpsertResourceRequest, UpsertResourceResponse, path};
use shared::client::encode_segment;
use shared::error::Error;
use shared::resource::Node;

use super::{Web, WebSession, WebState, assets, check_form, check_origin, safe_next, session};
use crate::api::ClientAddr;
use crate::api::ratelimit::Class;

/// What the header shows for a signed-in user.
pub(super) struct Nav<'a> {
    pub(super) sess: &'a WebSession,
    root: String,
    cluster: String,
    clusters: Vec<String>,
    active: &'static str,
}

pub(super) fn page(nav: Option<&Nav>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Teleport" }
                link rel="stylesheet" href=(assets::url("app.css"));
                script src=(assets::url("app.js")) defer {}
            }
            body {
                @if let Some(n) = nav {
                    header {
                        span.brand { "Teleport" }
                        a class=(if n.active == "nodes" { "active" } else { "" }) href=(format!("/web/cluster/{}/nodes", encode_segment(&n.cluster))) { "Servers" }
                        a class=(if n.active == "sessions" { "active" } else { "" }) href=(format!("/web/cluster/{}/sessions", encode_segment(&n.cluster))) { "Active Sessions" }
                        a class=(if n.active == "clusters" { "active" } else { "" }) href="/web/clusters" { "Manage Clusters" }
                        a class=(if n.active == "roles" { "active" } else { "" }) href="/web/roles" { "Roles" }
                        a class=(if n.active == "trust" { "active" } else { "" }) href="/web/trust" { "Trusted Root Clusters" }
                        a class=(if n.active == "audit" { "active" } else { "" }) href=(format!("/web/cluster/{}/audit", encode_segment(&n.cluster))) { "Audit Log" }
                        a class=(if n.active == "requests" { "active" } else { "" }) href="/web/requests" { "Access Requests" }
                        span.spacer {}
                        @if n.clusters.len() > 1 {
                            form method="get" action="/web/go" {
                                input type="hidden" name="page" value=(n.active);
                                select name="cluster" data-autosubmit aria-label="Cluster" {
                                    @for c in &n.clusters {
                                        option value=(c) selected[*c == n.cluster] { (c) @if *c == n.root { " (root)" } }
                                    }
                                }
                                noscript { button type="submit" { "Go" } }
                            }
                        }
                        span { (n.sess.user) }
                        form method="post" action="/web/logout" {
                            input type="hidden" name="csrf" value=(n.sess.csrf);
                            button type="submit" id="logout" { "Sign out" }
                        }
                    }
                }
                @if let Some(n) = nav {
                    @if let Some((ids, until)) = super::requests::elevated(n.sess) {
                        div.banner #elevated role="status" {
                            "You are using roles from access request " (ids.join(", ")) " until " (until) ". "
                            a href="/web/requests" { "Switch back" }
                        }
                    }
                }
                (body)
            }
        }
    }
}

pub(super) fn respond(status: StatusCode, markup: Markup) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], markup.into_string()).into_response()
}

fn error_box(e: &Error) -> Markup {
    html! { div.error role="alert" { (e.message) } }
}

/// What a browser user reads for `e`, and where to go next: by the error's code, because the
/// API's messages are written for tsh users (`run 'tsh clusters'`).
fn for_browser(nav: Option<&Nav>, e: &Error) -> (String, &'static str, &'static str) {
    let cluster = nav.map(|n| n.cluster.as_str()).unwrap_or_default();
    if e.has(shared::Code::ClusterNotFound) {
        return (
            format!(
                "Cluster {cluster:?} is not one you can reach: it does not exist, or your roles' cluster_labels do not show it to you."
            ),
            "/web/clusters",
            "See the clusters you can reach",
        );
    }
    if e.has(shared::Code::TunnelOffline) {
        return (
            format!(
                "Cluster {cluster:?} is offline: its reverse tunnel to this proxy is down. Manage Clusters shows when it was last seen."
            ),
            "/web/clusters",
            "Manage Clusters",
        );
    }
    if e.kind == shared::Kind::Internal {
        tracing::error!(error = %e, "internal error serving a page");
        return ("internal error; the details are in the teleport log".into(), "/web", "Back");
    }
    (e.message.clone(), "/web", "Back")
}

/// The one error page.
pub(super) fn error_page(nav: Option<&Nav>, e: &Error) -> Response {
    let status = StatusCode::from_u16(e.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (message, next, label) = for_browser(nav, e);
    respond(
        status,
        page(
            nav,
            "Error",
            html! { main { div.card { h1 { "Something went wrong" } div.error role="alert" { (message) } p { a #next href=(next) { (label) } } } } },
        ),
    )
}

pub(super) async fn nav<'a>(s: &WebState, sess: &'a mut WebSession, cluster: &str, active: &'static str) -> Nav<'a> {
    let clusters = visible_clusters(s, sess).await;
    nav_of(sess, s.auth.cluster_name().to_string(), cluster, clusters, active)
}

/// The names of the root and the leaves the user may see (none when the root cannot be asked).
async fn visible_clusters(s: &WebState, sess: &mut WebSession) -> Vec<String> {
    let root = s.auth.cluster_name().to_string();
    match super::api(s, sess, &root).await {
        Ok(api) => {
            api.get::<Vec<ClusterInfo>>(path::CLUSTERS).await.map(|c| c.into_iter().map(|c| c.cluster_name).collect()).unwrap_or_default()
        }
        Err(_) => vec![],
    }
}

/// The header from a cluster list the page already has.
fn nav_of<'a>(sess: &'a WebSession, root: String, cluster: &str, clusters: Vec<String>, active: &'static str) -> Nav<'a> {
    let clusters = if clusters.is_empty() { vec![root.clone()] } else { clusters };
    Nav { sess, root, cluster: cluster.to_string(), clusters, active }
}

/// `GET /web`: the servers of the root, or the login page.
pub async fn index(State(s): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    if let Some(id) = session::cookie_of(&headers)
        && let Ok(Some(_)) = session::load(&s.auth, &id).await
    {
        return Redirect::to(&format!("/web/cluster/{}/nodes", encode_segment(s.auth.cluster_name()))).into_response();
    }
    Redirect::to("/web/login").into_response()
}

/// `GET /web/{anything else}`.
/// An unknown page: for a signed-in browser, with the navigation bar (it used to lose it).
pub async fn not_found(State(s): State<Arc<WebState>>, req: axum::extract::Request) -> Response {
    let (parts, _) = req.into_parts();
    if let Some(id) = super::session::cookie_of(&parts.headers)
        && let Ok(Some(mut sess)) = super::session::load(&s.auth, &id).await
    {
        sess.client = crate::api::conn_info(&parts).peer;
        let root = s.auth.cluster_name().to_string();
        let nav = nav(&s, &mut sess, &root, "").await;
        return error_page(Some(&nav), &Error::not_found("no such page; the links above lead to every page"));
    }
    error_page(None, &Error::not_found("no such page"))
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// How the sign-in page offers to sign in.
struct SignInOptions {
    second_factor: bool,
    local: bool,
    /// (kind, name, display).
    connectors: Vec<(String, String, String)>,
}

async fn sign_in_options(s: &WebState) -> SignInOptions {
    let pref = s.auth.auth_preference().await.ok();
    let connectors: Vec<shared::resource::Connector> = s.auth.services.list(crate::services::keys::CONNECTORS).await.unwrap_or_default();
    SignInOptions {
        second_factor: pref.as_ref().map(|p| p.second_factor().enabled()).unwrap_or(true),
        local: pref.as_ref().map(|p| p.spec.allow_local_auth).unwrap_or(true),
        connectors: connectors.iter().map(|c| (c.kind.clone(), c.metadata.name.clone(), c.display())).collect(),
    }
}

fn login_markup(s: &WebState, next: &str, user: &str, opts: &SignInOptions, error: Option<&Error>) -> Markup {
    let cluster = s.auth.cluster_name();
    let second_factor = opts.second_factor;
    page(
        None,
        "Sign in",
        html! {
            main.narrow {
                div.card {
                    h1 { "Sign in to " (cluster) }
                    @if let Some(e) = error { (error_box(e)) }
                    @for (kind, name, display) in &opts.connectors {
                        a.button.sso href=(format!("/webapi/{kind}/login/web?connector_id={}&redirect_url={}", shared::sso::query_escape(name), shared::sso::query_escape(next)))
                            data-connector=(name) {
                            "Sign in with " (if display.is_empty() { name.as_str() } else { display.as_str() })
                        }
                    }
                    @if opts.local {
                    form method="post" action="/web/login" {
                        input type="hidden" name="next" value=(next);
                        label for="user" { "Username" }
                        input #user name="user" value=(user) autocomplete="username" required autofocus;
                        label for="password" { "Password" }
                        input #password type="password" name="password" autocomplete="current-password" required;
                        @if second_factor {
                            label for="otp" { "Code from your authenticator app" }
                            input #otp name="otp" inputmode="numeric" autocomplete="one-time-code" maxlength="8";
                        }
                        button type="submit" id="sign-in" { "Sign in" }
                    }
                    }
                    p.muted { "From a terminal: " code { "tsh login --proxy=" (s.ping.public_addr) } }
                }
            }
        },
    )
}

/// `GET /web/login`.
pub async fn login_form(State(s): State<Arc<WebState>>, Query(q): Query<NextQuery>) -> Response {
    let opts = sign_in_options(&s).await;
    respond(StatusCode::OK, login_markup(&s, &safe_next(&q.next), "", &opts, None))
}

#[derive(Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    #[serde(default)]
    otp: String,
    #[serde(default)]
    next: String,
}

/// `POST /web/login`.
pub async fn login(State(s): State<Arc<WebState>>, addr: ClientAddr, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    let opts = sign_in_options(&s).await;
    if let Err(e) = check_origin(&headers) {
        return respond(StatusCode::FORBIDDEN, login_markup(&s, &safe_next(&f.next), &f.user, &opts, Some(&e)));
    }
    match super::json::sign_in(&s, &addr, &f.user, &f.password, Some(f.otp.trim().to_string())).await {
        Ok(sess) => {
            let now = s.auth.clock.now().unix_timestamp();
            let next = safe_next(&f.next);
            let to = if next.is_empty() { format!("/web/cluster/{}/nodes", encode_segment(s.auth.cluster_name())) } else { next };
            (StatusCode::SEE_OTHER, [(header::SET_COOKIE, sess.cookie(now)), (header::LOCATION, to)]).into_response()
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.kind.http_status()).unwrap_or(StatusCode::FORBIDDEN);
            respond(status, login_markup(&s, &safe_next(&f.next), &f.user, &opts, Some(&e)))
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /web/logout`.
pub async fn logout(State(s): State<Arc<WebState>>, headers: HeaderMap, Web(sess): Web, Form(f): Form<CsrfForm>) -> Response {
    if let Err(e) = check_form(&headers, &sess, &f.csrf) {
        return error_page(None, &e);
    }
    let _ = session::delete(&s.auth, &sess).await;
    (StatusCode::SEE_OTHER, [(header::SET_COOKIE, session::clear_cookie()), (header::LOCATION, "/web/login".to_string())]).into_response()
}

fn invite_markup(s: &WebState, token: &str, info: &shared::api::UserTokenInfo, error: Option<&Error>) -> Markup {
    let needs_code = matches!(info.second_factor.as_str(), "otp" | "on");
    let secret = info.otpauth_url.as_deref().and_then(|u| u.split("secret=").nth(1)).and_then(|r| r.split('&').next()).unwrap_or_default();
    page(
        None,
        "Set your password",
        html! {
            main.narrow {
                div.card {
                    h1 { "Welcome, " (info.user) }
                    p.muted { "Set a password for " (s.auth.cluster_name()) "." }
                    @if let Some(e) = error { (error_box(e)) }
                    form method="post" action=(format!("/web/{}/{}", if info.kind == "reset" { "reset" } else { "invite" }, encode_segment(token))) {
                        label for="password" { "New password (at least 8 characters)" }
                        input #password type="password" name="password" autocomplete="new-password" minlength="8" required autofocus;
                        label for="confirm" { "Repeat the password" }
                        input #confirm type="password" name="confirm" autocomplete="new-password" minlength="8" required;
                        @if let Some(svg) = &info.qr_svg {
                            h2 { "Second factor" }
                            p { "Scan this code with an authenticator app, then enter the code it shows." }
                            // Drawn by the server from the otpauth:// URL: nothing user-supplied in it.
                            div #qr { (PreEscaped(svg)) }
                            p.muted { "Secret: " code #otp-secret { (secret) } }
                            label for="otp" { "Code from the app" }
                            input #otp name="otp" inputmode="numeric" autocomplete="one-time-code" maxlength="8" required[needs_code];
                        }
                        button type="submit" id="set-password" { "Set password and sign in" }
                    }
                }
            }
        },
    )
}

/// `GET /web/invite/<token>` and `/web/reset/<token>`.
pub async fn invite_form(State(s): State<Arc<WebState>>, addr: ClientAddr, Path(token): Path<String>) -> Response {
    if let Err(e) = s.limiter.check(Class::Password, &addr.key()) {
        return error_page(None, &e);
    }
    match s.auth.user_token_info(&token).await {
        Ok(info) => respond(StatusCode::OK, invite_markup(&s, &token, &info, None)),
        Err(e) => error_page(None, &e),
    }
}

#[derive(Deserialize)]
pub struct InviteForm {
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    otp: String,
}

/// `POST /web/invite/<token>`: sets the password (and registers the OTP device), then signs in.
pub async fn invite(
    State(s): State<Arc<WebState>>,
    addr: ClientAddr,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(f): Form<InviteForm>,
) -> Response {
    if let Err(e) = s.limiter.check(Class::Password, &addr.key()) {
        return error_page(None, &e);
    }
    let info = match s.auth.user_token_info(&token).await {
        Ok(i) => i,
        Err(e) => return error_page(None, &e),
    };
    let again = |e: Error| {
        respond(StatusCode::from_u16(e.kind.http_status()).unwrap_or(StatusCode::BAD_REQUEST), invite_markup(&s, &token, &info, Some(&e)))
    };
    if let Err(e) = check_origin(&headers) {
        return again(e);
    }
    if f.password != f.confirm {
        return again(Error::bad_parameter("the passwords do not match"));
    }
    let code = Some(f.otp.trim()).filter(|c| !c.is_empty());
    let user = match s.auth.set_password_with_token(&token, &f.password, code).await {
        Ok(u) => u,
        Err(e) => return again(e),
    };
    // The link and the code were the proof; sign in without asking for the code again.
    let signed_in = async {
        let u = s.auth.services.user(&user).await?.value;
        let (ssh, tls, keys) = shared::certs::new_key_pair()?;
        let certs = s.auth.user_certs(&u, &keys, crate::auth::DEFAULT_USER_TTL, None).await?;
        session::create(&s.auth, certs, &ssh, &tls).await
    }
    .await;
    match signed_in {
        Ok(sess) => {
            let now = s.auth.clock.now().unix_timestamp();
            let to = format!("/web/cluster/{}/nodes", encode_segment(s.auth.cluster_name()));
            (StatusCode::SEE_OTHER, [(header::SET_COOKIE, sess.cookie(now)), (header::LOCATION, to)]).into_response()
        }
        Err(_) => Redirect::to("/web/login").into_response(),
    }
}

#[derive(Deserialize)]
pub struct GoQuery {
    cluster: String,
    #[serde(default)]
    page: String,
}

/// `GET /web/go?cluster=C&page=P`: the cluster selector.
pub async fn go(Query(q): Query<GoQuery>) -> Redirect {
    let c = encode_segment(&q.cluster);
    Redirect::to(&match q.page.as_str() {
        "audit" => format!("/web/cluster/{c}/audit"),
        "sessions" => format!("/web/cluster/{c}/sessions"),
        "clusters" => "/web/clusters".into(),
        "roles" => "/web/roles".into(),
        "trust" => "/web/trust".into(),
        _ => format!("/web/cluster/{c}/nodes"),
    })
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: usize,
}

/// Rows per page of long lists.
const PAGE: usize = 50;

fn pager(base: &str, q: &str, page: usize, total: usize) -> Markup {
    let pages = total.div_ceil(PAGE).max(1);
    let link = |p: usize| format!("{base}?q={}&page={p}", shared::sso::query_escape(q));
    html! {
        div.pager {
            @if page > 0 { a href=(link(page - 1)) { "← Previous" } }
            span.muted { "Page " (page + 1) " of " (pages) " · " (total) " in all" }
            @if page + 1 < pages { a href=(link(page + 1)) { "Next →" } }
        }
    }
}

/// `GET /web/clusters`: the root and the leaves this user may see, searchable and paged, with
/// each leaf's status and labels; admins may relabel or remove a leaf.
pub async fn clusters(State(s): State<Arc<WebState>>, Web(mut sess): Web, Query(q): Query<ListQuery>) -> Response {
    let root = s.auth.cluster_name().to_string();
    let result = async {
        let api = super::api(&s, &mut sess, &root).await?;
        let list: Vec<ClusterInfo> = api.get(path::CLUSTERS).await?;
        // Admins also get each leaf's last heartbeat (one list call, not one per leaf).
        let details: BTreeMap<String, Value> = match api.get::<Vec<Value>>("/v1/resources/remote_cluster").await {
            Ok(v) => v.into_iter().filter_map(|rc| Some((rc["metadata"]["name"].as_str()?.to_string(), rc))).collect(),
            Err(_) => BTreeMap::new(),
        };
        Ok::<_, Error>((list, details))
    }
    .await;
    let csrf = sess.csrf.clone();
    let (list, details) = match result {
        Ok(r) => r,
        Err(e) => return error_page(Some(&nav(&s, &mut sess, &root, "clusters").await), &e),
    };
    // The selector lists what this page already asked for.
    let nav = nav_of(&sess, root.clone(), &root, list.iter().map(|c| c.cluster_name.clone()).collect(), "clusters");
    let needle = q.q.to_lowercase();
    let matching: Vec<&ClusterInfo> = list
        .iter()
        .filter(|c| {
            needle.is_empty()
                || c.cluster_name.to_lowercase().contains(&needle)
                || c.labels.iter().flatten().any(|(k, v)| format!("{k}={v}").to_lowercase().contains(&needle))
        })
        .collect();
    let total = matching.len();
    let shown: Vec<&&ClusterInfo> = matching.iter().skip(q.page * PAGE).take(PAGE).collect();
    let admin = !details.is_empty() || list.len() == 1;
    let body = html! {
        main {
            div.card {
                h1 { "Manage Clusters" }
                form.row method="get" action="/web/clusters" {
                    input name="q" value=(q.q) placeholder="Search by name or label" aria-label="Search";
                    button.small type="submit" { "Search" }
                }
                table #clusters {
                    thead { tr { th { "Type" } th { "Name" } th { "Status" } th { "Last heartbeat" } th { "Labels" } th {} } }
                    tbody {
                        @for c in &shown {
                            @let d = details.get(&c.cluster_name);
                            tr data-cluster=(c.cluster_name) {
                                td { span.pill { (c.cluster_type.to_uppercase()) } }
                                td { a href=(format!("/web/cluster/{}/nodes", encode_segment(&c.cluster_name))) { (c.cluster_name) } }
                                td { span class=(if c.status == "online" { "online" } else { "offline" }) data-status=(c.status) { (c.status) } }
                                td.muted { (d.and_then(|d| d["status"]["last_heartbeat"].as_str()).filter(|t| !t.starts_with("0001")).unwrap_or("")) }
                                td { @for (k, v) in c.labels.iter().flatten() { span.pill { (k) "=" (v) } } }
                                td {
                                    @if c.cluster_type == "leaf" && d.is_some() {
                                        form.row method="post" action=(format!("/web/clusters/{}/labels", encode_segment(&c.cluster_name))) {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input name="labels" aria-label="Labels" placeholder="env=prod,team=a"
                                                value=(c.labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","));
                                            button.small type="submit" { "Set labels" }
                                        }
                                        form method="post" action=(format!("/web/clusters/{}/delete", encode_segment(&c.cluster_name)))
                                            data-confirm=(format!("Remove leaf cluster {}? Its users lose access through this root.", c.cluster_name)) {
                                            input type="hidden" name="csrf" value=(csrf);
                                            button.small.danger type="submit" { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                (pager("/web/clusters", &q.q, q.page, total))
                @if !admin { p.muted { "You see the leaves your roles' cluster_labels allow." } }
            }
        }
    };
    let mut resp = respond(StatusCode::OK, page(Some(&nav), "Manage Clusters", body));
    // The statuses refresh by themselves (no script needed).
    resp.headers_mut().insert(header::REFRESH, axum::http::HeaderValue::from_static("5"));
    resp
}

#[derive(Deserialize)]
pub struct LabelsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    labels: String,
}

/// `POST /web/clusters/<name>/labels` (as `tctl update rc/<name> --set-labels`).
pub async fn cluster_labels(
    State(s): State<Arc<WebState>>,
    headers: HeaderMap,
    Web(mut sess): Web,
    Path(name): Path<String>,
    Form(f): Form<LabelsForm>,
) -> Response {
    let root = s.auth.cluster_name().to_string();
    let result = async {
        check_form(&headers, &sess, &f.csrf)?;
        let labels = if f.labels.trim().is_empty() { Default::default() } else { shared::resource::parse_label_spec(&f.labels)? };
        let req = UpdateRemoteClusterRequest { set_labels: Some(labels), set_ttl_seconds: None };
        let _: Value =
            super::api(&s, &mut sess, &root).await?.patch(&format!("{}/{}", path::REMOTE_CLUSTERS, encode_segment(&name)), &req).await?;
        Ok::<_, Error>(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/web/clusters").into_response(),
        Err(e) => error_page(Some(&nav(&s, &mut sess, &root, "clusters").await), &e),
    }
}

/// `POST /web/clusters/<name>/delete` (as `tctl rm rc/<name>`).
pub async fn cluster_delete(
    State(s): State<Arc<WebState>>,
    headers: HeaderMap,
    Web(mut sess): Web,
    Path(name): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let root = s.auth.cluster_name().to_string();
    let result = async {
        check_form(&headers, &sess, &f.csrf)?;
        let api = super::api(&s, &mut sess, &root).await?;
        let _: Value =
            api.call(hyper::Method::DELETE, &format!("/v1/resources/remote_cluster/{}", encode_segment(&name)), None::<&()>).await?;
        Ok::<_, Error>(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/web/clusters").into_response(),
        Err(e) => error_page(Some(&nav(&s, &mut sess, &root, "clusters").await), &e),
    }
}

fn logins_of(sess: &WebSession) -> Vec<String> {
    shared::certs::parse_ssh_cert(&sess.certs.ssh_cert)
        .map(|c| c.valid_principals().iter().filter(|p| !p.starts_with("-teleport")).cloned().collect())
        .unwrap_or_default()
}

/// The most leaves an empty root's page asks for their servers.
const ELSEWHERE_MAX: usize = 20;

/// The other clusters the user may see that have servers for them, with how many (or why not
/// known): asked at once, each for at most three seconds, at most [`ELSEWHERE_MAX`] of them.
/// `clusters` are the ones the user may see; the second value counts those not asked.
async fn servers_elsewhere(s: &WebState, sess: &mut WebSession, clusters: &[String]) -> (Vec<(String, String)>, usize) {
    let root = s.auth.cluster_name();
    let leaves: Vec<String> = clusters.iter().filter(|c| *c != root).cloned().collect();
    let more = leaves.len().saturating_sub(ELSEWHERE_MAX);
    let mut asks = tokio::task::JoinSet::new();
    for (i, leaf) in leaves.into_iter().take(ELSEWHERE_MAX).enumerate() {
        let Ok(api) = super::api(s, sess, &leaf).await else { continue };
        asks.spawn(async move {
            let n = tokio::time::timeout(std::time::Duration::from_secs(3), api.get::<Vec<Node>>(path::NODES)).await;
            (i, leaf, n.ok().and_then(|r| r.ok()).map(|n| n.len()))
        });
    }
    let mut found: Vec<(usize, String, String)> = Vec::new();
    while let Some(Ok((i, leaf, n))) = asks.join_next().await {
        match n {
            Some(0) => {}
            Some(1) => found.push((i, leaf, "1 server".into())),
            Some(n) => found.push((i, leaf, format!("{n} servers"))),
            None => found.push((i, leaf, "did not answer (offline?)".into())),
        }
    }
    found.sort();
    (found.into_iter().map(|(_, c, n)| (c, n)).collect(), more)
}

/// `GET /web/cluster/<c>/nodes`: the servers of the cluster (a leaf's through the tunnel).
pub async fn nodes(
    State(s): State<Arc<WebState>>,
    Web(mut sess): Web,
    Path(cluster): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    let kube_url = format!("{}/kube_cluster", path::RESOURCES);
    let app_url = format!("{}/app", path::RESOURCES);
    let (result, kube, apps) = match super::api(&s, &mut sess, &cluster).await {
        Ok(api) => {
            let (n, k, a) = tokio::join!(
                api.get::<Vec<Node>>(path::NODES),
                api.get::<Vec<shared::resource::KubeCluster>>(&kube_url),
                api.get::<Vec<shared::resource::App>>(&app_url)
            );
            // An older cluster without Kubernetes clusters or apps simply shows none.
            (n, k.unwrap_or_default(), a.unwrap_or_default())
        }
        Err(e) => (Err(e), Vec::new(), Vec::new()),
    };
    let proxy_public = s.ping.public_addr.clone();
    let logins = logins_of(&sess);
    // An empty root is not where to stop: say where the servers are (from the same cluster list
    // the header shows).
    let empty_root = matches!(&result, Ok(n) if n.is_empty()) && q.q.is_empty() && cluster == s.auth.cluster_name();
    let (elsewhere, unasked, nav) = if empty_root {
        let clusters = visible_clusters(&s, &mut sess).await;
        let (elsewhere, unasked) = servers_elsewhere(&s, &mut sess, &clusters).await;
        (elsewhere, unasked, nav_of(&sess, s.auth.cluster_name().to_string(), &cluster, clusters, "nodes"))
    } else {
        (Vec::new(), 0, nav(&s, &mut sess, &cluster, "nodes").await)
    };
    let nodes = match result {
        Ok(n) => n,
        Err(e) => return error_page(Some(&nav), &e),
    };
    let needle = q.q.to_lowercase();
    let matching: Vec<&Node> = nodes
        .iter()
        .filter(|n| {
            needle.is_empty()
                || n.spec.hostname.to_lowercase().contains(&needle)
                || n.metadata.labels.iter().any(|(k, v)| format!("{k}={v}").to_lowercase().contains(&needle))
        })
        .collect();
    let total = matching.len();
    let base = format!("/web/cluster/{}/nodes", encode_segment(&cluster));
    let body = html! {
        main {
            div.card {
                h1 { "Servers of " (cluster) }
                form.row method="get" action=(base) {
                    input name="q" value=(q.q) placeholder="Search by hostname or label" aria-label="Search";
                    button.small type="submit" { "Search" }
                }
                @if nodes.is_empty() { p.muted #no-servers { "No servers you may reach in this cluster." } }
                @if !elsewhere.is_empty() {
                    div #elsewhere {
                        p { "Your servers are in other clusters:" }
                        ul {
                            @for (c, n) in &elsewhere {
                                li { a href=(format!("/web/cluster/{}/nodes", encode_segment(c))) { (c) } span.muted { " · " (n) } }
                            }
                        }
                        @if unasked > 0 { p.muted { "…and " (unasked) " more clusters: " a href="/web/clusters" { "Manage Clusters" } " lists them all." } }
                    }
                }
                table #nodes {
                    thead { tr { th { "Hostname" } th { "Address" } th { "Labels" } th { "Connect" } } }
                    tbody {
                        @for n in matching.iter().skip(q.page * PAGE).take(PAGE) {
                            tr data-node=(n.spec.hostname) {
                                td { (n.spec.hostname) }
                                td { @if n.spec.use_tunnel { "⟵ Tunnel" } @else { (n.spec.addr) } }
                                td { @for (k, v) in &n.metadata.labels { span.pill { (k) ": " (v) } } }
                                td {
                                    div.row {
                                        @for l in &logins {
                                            a.button.small href=(format!("/web/cluster/{}/console/node/{}/{}", encode_segment(&cluster), encode_segment(&n.spec.hostname), encode_segment(l))) { (l) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                (pager(&base, &q.q, q.page, total))
                p.muted { "Logins come from your certificate; the cluster that owns the server decides (for a leaf, with its role map)." }
            }
            @if !kube.is_empty() {
                div.card #kube-clusters {
                    h2 { "Kubernetes clusters of " (cluster) }
                    table {
                        thead { tr { th { "Name" } th { "Labels" } th { "Connect" } } }
                        tbody {
                            @for k in &kube {
                                tr data-kube=(k.metadata.name) {
                                    td { (k.metadata.name) }
                                    td { @for (key, v) in &k.metadata.labels { span.pill { (key) ": " (v) } } }
                                    td { code { "tsh kube login --cluster=" (cluster) " " (k.metadata.name) } }
                                }
                            }
                        }
                    }
                    p.muted { "Then plain kubectl; the cluster that owns the Kubernetes cluster decides what you may do." }
                }
            }
            @if !apps.is_empty() {
                div.card #apps {
                    h2 { "Applications of " (cluster) }
                    table {
                        thead { tr { th { "Name" } th { "Description" } th { "Address" } th { "Labels" } th { "Open" } } }
                        tbody {
                            @for a in &apps {
                                @let fqdn = shared::app::fqdn_at(&a.metadata.name, &a.spec.public_addr, &proxy_public);
                                tr data-app=(a.metadata.name) {
                                    td { (a.metadata.name) }
                                    td { (a.metadata.description.clone().unwrap_or_default()) }
                                    td { (fqdn.clone().unwrap_or_else(|| a.spec.public_addr.clone())) }
                                    td { @for (key, v) in &a.metadata.labels { span.pill { (key) ": " (v) } } }
                                    td {
                                        @if a.spec.uri.starts_with("tcp://") {
                                            code { "tsh proxy app --cluster=" (cluster) " " (a.metadata.name) }
                                        } @else if let Some(f) = &fqdn {
                                            a.button.small.launch href=(launch_url(f, &cluster, a)) { "Launch" }
                                        } @else {
                                            code { "tsh apps login --cluster=" (cluster) " " (a.metadata.name) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    p.muted { "The cluster that serves the application decides who may use it; it signs who you are into every request." }
                }
            }
        }
    };
    respond(StatusCode::OK, page(Some(&nav), "Servers", body))
}

/// `GET /web/cluster/<c>/console/node/<server>/<login>`: the terminal.
pub async fn console(
    State(s): State<Arc<WebState>>,
    Web(mut sess): Web,
    Path((cluster, server, login)): Path<(String, String, String)>,
) -> Response {
    let nav = nav(&s, &mut sess, &cluster, "nodes").await;
    let title = format!("{login}@{server}");
    terminal_page(&nav, &cluster, &title, html! { div #terminal data-site=(cluster) data-server=(server) data-login=(login) {} }, true)
}

#[derive(Deserialize, Default)]
pub struct JoinQuery {
    #[serde(default)]
    mode: String,
}

/// `GET /web/cluster/<c>/console/session/<sid>?mode=observer|peer`: the terminal, joined to a
/// running session (the node decides whether this user may, and in which mode).
pub async fn join_console(
    State(s): State<Arc<WebState>>,
    Web(mut sess): Web,
    Path((cluster, sid)): Path<(String, String)>,
    Query(q): Query<JoinQuery>,
) -> Response {
    let found = async {
        super::api(&s, &mut sess, &cluster)
            .await?
            .get::<SessionTracker>(&format!("{}/{}", path::SESSION_TRACKERS, encode_segment(&sid)))
            .await
    }
    .await;
    let nav = nav(&s, &mut sess, &cluster, "sessions").await;
    let t = match found {
        Ok(t) => t,
        Err(e) => return error_page(Some(&nav), &e),
    };
    let mode = if q.mode == "peer" { "peer" } else { "observer" };
    let title = format!("{}@{} (joined as {mode})", t.spec.login, t.spec.target_hostname);
    let term = html! {
        div #terminal data-site=(cluster) data-server=(t.spec.target_address) data-login=(t.spec.login)
            data-host=(t.spec.target_hostname) data-sid=(t.metadata.name) data-mode=(mode) {}
    };
    terminal_page(&nav, &cluster, &title, term, false)
}

/// The terminal page: the header, a status line, the file bar (own sessions), the terminal.
fn terminal_page(nav: &Nav, cluster: &str, title: &str, terminal: Markup, files: bool) -> Response {
    let bearer = nav.sess.bearer.clone();
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="grv_bearer_token" content=(bearer);
                title { (title) }
                link rel="stylesheet" href=(assets::url("app.css"));
                link rel="stylesheet" href=(assets::url("xterm.css"));
                script src=(assets::url("app.js")) defer {}
                script src=(assets::url("xterm.js")) defer {}
                script src=(assets::url("addon-fit.js")) defer {}
                script src=(assets::url("terminal.js")) defer {}
                @if files { script src=(assets::url("files.js")) defer {} }
            }
            body {
                (page_header(nav))
                div #terminal-page {
                    div #term-status data-state="connecting" { "Connecting to " (title) " in " (cluster) "…" }
                    @if files {
                        div #file-bar {
                            form #upload-form {
                                label { "Upload " input #upload-file type="file"; }
                                label { " to " input #upload-dir type="text" value="~" size="24" aria-label="directory on the server"; }
                                button type="submit" { "Upload" }
                            }
                            form #download-form {
                                label { "Download " input #download-path type="text" size="36" placeholder="/path/on/the/server" aria-label="file on the server"; }
                                button type="submit" { "Download" }
                            }
                            span #file-status data-state="idle" {}
                        }
                    }
                    (terminal)
                }
            }
        }
    };
    respond(StatusCode::OK, markup)
}

/// `GET /web/cluster/<c>/sessions`: the running sessions this user may see in the cluster (a
/// leaf's through the tunnel, as the leaf's roles allow), each with a way to join it.
pub async fn sessions(State(s): State<Arc<WebState>>, Web(mut sess): Web, Path(cluster): Path<String>) -> Response {
    let result = async { super::api(&s, &mut sess, &cluster).await?.get::<Vec<SessionTracker>>(path::SESSION_TRACKERS).await }.await;
    let nav = nav(&s, &mut sess, &cluster, "sessions").await;
    let list = match result {
        Ok(l) => l,
        Err(e) => return error_page(Some(&nav), &e),
    };
    let me = nav.sess.user.clone();
    let body = html! {
        main {
            div.card {
                h1 { "Active Sessions in " (cluster) }
                @if list.is_empty() {
                    p.muted #no-sessions { "No running sessions you may see in this cluster. Yours appear here, and those your roles' join_sessions let you join." }
                } @else {
                    table #sessions {
                        thead { tr { th { "Session" } th { "Server" } th { "Login" } th { "Participants" } th { "Started" } th { "Join" } } }
                        tbody {
                            @for t in &list {
                                @let base = format!("/web/cluster/{}/console/session/{}", encode_segment(&cluster), encode_segment(&t.metadata.name));
                                tr data-sid=(t.metadata.name) {
                                    td.muted { code { (t.metadata.name) } }
                                    td { (t.spec.target_hostname) }
                                    td { (t.spec.login) }
                                    td { @for p in &t.spec.participants { span.pill { (p.user) @if p.mode == "observer" { " (observer)" } } } }
                                    td.muted { (shared::timefmt::rfc3339_secs(t.spec.created)) }
                                    td {
                                        div.row {
                                            a.button.small.join href=(format!("{base}?mode=observer")) { "Watch" }
                                            @if t.spec.host_user == me { a.button.small href=(format!("{base}?mode=peer")) { "Join as peer" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                p.muted { "Watching shows everything the session prints; what you type is never sent. The cluster whose server runs the session decides who may join." }
            }
        }
    };
    let mut resp = respond(StatusCode::OK, page(Some(&nav), "Active Sessions", body));
    resp.headers_mut().insert(header::REFRESH, axum::http::HeaderValue::from_static("10"));
    resp
}

fn page_header(nav: &Nav) -> Markup {
    // The header alone, from the shared layout.
    let full = page(Some(nav), "", html! {}).into_string();
    let start = full.find("<header>").unwrap_or(0);
    let end = full.find("</header>").map(|i| i + "</header>".len()).unwrap_or(start);
    PreEscaped(full[start..end].to_string())
}

/// `GET /web/cluster/<c>/audit`: the cluster's newest events (a leaf's through the tunnel,
/// as far as the leaf's role map lets this user read them).
pub async fn audit(State(s): State<Arc<WebState>>, Web(mut sess): Web, Path(cluster): Path<String>) -> Response {
    let result = async { super::api(&s, &mut sess, &cluster).await?.get::<Vec<Value>>(&format!("{}?limit=200", path::EVENTS)).await }.await;
    let nav = nav(&s, &mut sess, &cluster, "audit").await;
    let events = match result {
        Ok(e) => e,
        Err(e) if e.kind == shared::Kind::AccessDenied && !e.has(shared::Code::ClusterNotFound) => {
            let leaf = cluster != nav.root;
            let body = html! {
                main { div.card {
                    h1 { "Audit Log of " (cluster) }
                    p #audit-denied {
                        "Your roles in " (cluster) " do not let you read its audit log: that takes a rule allowing "
                        code { "list" } " and " code { "read" } " on " code { "event" } "."
                    }
                    @if leaf {
                        p.muted { "In a leaf cluster the leaf decides: its role map turns your roles into its own, and its administrators grant the rule to those roles." }
                    } @else {
                        p.muted { "The cluster's administrators grant it (the preset auditor and editor roles have it)." }
                    }
                } }
            };
            return respond(StatusCode::FORBIDDEN, page(Some(&nav), "Audit Log", body));
        }
        Err(e) => return error_page(Some(&nav), &e),
    };
    let body = html! {
        main {
            div.card {
                h1 { "Audit Log of " (cluster) }
                table #events {
                    thead { tr { th { "Time" } th { "Event" } th { "User" } th { "Details" } } }
                    tbody {
                        @for e in events.iter().rev() {
                            tr data-event=(e["event"].as_str().unwrap_or_default()) {
                                td.muted { (e["time"].as_str().unwrap_or_default()) }
                                td { (e["event"].as_str().unwrap_or_default()) " " span.muted { (e["code"].as_str().unwrap_or_default()) } }
                                td { (e["user"].as_str().unwrap_or_default()) }
                                td { pre { (summary(e)) } }
                            }
                        }
                    }
                }
            }
        }
    };
    respond(StatusCode::OK, page(Some(&nav), "Audit Log", body))
}

fn summary(e: &Value) -> String {
    let Value::Object(m) = e else { return String::new() };
    m.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "time" | "event" | "code" | "user" | "uid" | "ei" | "cluster_name"))
        .map(|(k, v)| format!("{k}: {}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A resource kind the pages edit as YAML.
#[derive(Clone, Copy)]
struct Editor {
    kind: &'static str,
    plural: &'static str,
    title: &'static str,
    base: &'static str,
    active: &'static str,
    template: &'static str,
}

const ROLES: Editor = Editor {
    kind: "role",
    plural: "roles",
    title: "Roles",
    base: "/web/roles",
    active: "roles",
    template: "kind: role\nversion: v7\nmetadata:\n  name: stage-access\nspec:\n  allow:\n    logins: ['{{internal.logins}}']\n    node_labels:\n      env: stage\n  deny: {}\n",
};

const TRUST: Editor = Editor {
    kind: "trusted_cluster",
    plural: "trusted root clusters",
    title: "Trusted Root Clusters",
    base: "/web/trust",
    active: "trust",
    template: "kind: trusted_cluster\nversion: v2\nmetadata:\n  name: rootcluster.example.com\nspec:\n  enabled: true\n  token: <the token from 'tctl tokens add --type=trusted_cluster' on the root>\n  tunnel_addr: rootcluster.example.com:3080\n  web_proxy_addr: rootcluster.example.com:3080\n  role_map:\n    - remote: \"access\"\n      local: [\"visitor\"]\n",
};

async fn list_page(s: &WebState, mut sess: WebSession, ed: Editor, notice: Option<String>) -> Response {
    let root = s.auth.cluster_name().to_string();
    let result = async { super::api(s, &mut sess, &root).await?.get::<Vec<Value>>(&format!("/v1/resources/{}", ed.kind)).await }.await;
    let csrf = sess.csrf.clone();
    let nav = nav(s, &mut sess, &root, ed.active).await;
    let items = match result {
        Ok(i) => i,
        Err(e) => return error_page(Some(&nav), &e),
    };
    let body = html! {
        main {
            div.card {
                h1 { (ed.title) " of " (root) }
                @if let Some(n) = &notice { div.notice role="status" { (n) } }
                @if items.is_empty() { p.muted { "No " (ed.plural) " yet." } }
                table #resources {
                    thead { tr { th { "Name" } th { "Details" } th {} } }
                    tbody {
                        @for it in &items {
                            @let name = it["metadata"]["name"].as_str().unwrap_or_default();
                            tr data-name=(name) {
                                td { (name) }
                                td.muted {
                                    @if ed.kind == "trusted_cluster" {
                                        (if it["spec"]["enabled"].as_bool().unwrap_or(false) { "enabled" } else { "disabled" }) " · " (it["spec"]["web_proxy_addr"].as_str().unwrap_or_default())
                                    } @else {
                                        (it["metadata"]["description"].as_str().unwrap_or_default())
                                    }
                                }
                                td {
                                    div.row {
                                        a.button.small href=(format!("{}/{}/edit", ed.base, encode_segment(name))) { "Edit" }
                                        form method="post" action=(format!("{}/{}/delete", ed.base, encode_segment(name))) data-confirm=(format!("Delete {} {name}?", ed.kind)) {
                                            input type="hidden" name="csrf" value=(csrf);
                                            button.small.danger type="submit" { "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if ed.kind == "role" {
                    a.button href="/web/roles/new" id="new-resource" { "Create New Role" }
                } @else {
                    h2 { "Connect to Root Cluster" }
                    (editor_form(ed, &csrf, ed.template, false, None))
                }
            }
        }
    };
    respond(StatusCode::OK, page(Some(&nav), ed.title, body))
}

fn editor_form(ed: Editor, csrf: &str, yaml: &str, update: bool, error: Option<&Error>) -> Markup {
    html! {
        @if let Some(e) = error { (error_box(e)) }
        form method="post" action=(ed.base) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="mode" value=(if update { "update" } else { "create" });
            label for="yaml" { "YAML" }
            textarea #yaml name="yaml" spellcheck="false" { (yaml) }
            button type="submit" id="save" { @if update { "Save changes" } @else { "Create" } }
        }
    }
}

async fn editor_page(s: &WebState, mut sess: WebSession, ed: Editor, yaml: &str, update: bool, error: Option<&Error>) -> Response {
    let root = s.auth.cluster_name().to_string();
    let csrf = sess.csrf.clone();
    let nav = nav(s, &mut sess, &root, ed.active).await;
    let status = error.map(|e| StatusCode::from_u16(e.kind.http_status()).unwrap_or(StatusCode::BAD_REQUEST)).unwrap_or(StatusCode::OK);
    let body = html! { main { div.card { h1 { (ed.title) } (editor_form(ed, &csrf, yaml, update, error)) p { a href=(ed.base) { "Back to the list" } } } } };
    respond(status, page(Some(&nav), ed.title, body))
}

async fn edit_page(s: &WebState, mut sess: WebSession, ed: Editor, name: &str) -> Response {
    let root = s.auth.cluster_name().to_string();
    let result = async {
        super::api(s, &mut sess, &root).await?.get::<Vec<Value>>(&format!("/v1/resources/{}/{}", ed.kind, encode_segment(name))).await
    }
    .await;
    match result {
        Ok(items) if !items.is_empty() => {
            let yaml = super::editable_yaml(&items[0]);
            editor_page(s, sess, ed, &yaml, true, None).await
        }
        Ok(_) => editor_page(s, sess, ed, "", true, Some(&Error::not_found(format!("{} {name:?} is not found", ed.kind)))).await,
        Err(e) => {
            let nav = nav(s, &mut sess, &root, ed.active).await;
            error_page(Some(&nav), &e)
        }
    }
}

#[derive(Deserialize)]
pub struct YamlForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    yaml: String,
}

async fn save(s: &WebState, headers: &HeaderMap, mut sess: WebSession, ed: Editor, f: YamlForm) -> Response {
    let root = s.auth.cluster_name().to_string();
    let update = f.mode == "update";
    let result = async {
        check_form(headers, &sess, &f.csrf)?;
        let resource = super::one_resource(ed.kind, &f.yaml)?;
        let req = UpsertResourceRequest { resource, force: update, expected_id: None };
        let r: UpsertResourceResponse = super::api(s, &mut sess, &root).await?.post(path::RESOURCES, &req).await?;
        Ok(r)
    }
    .await;
    match result {
        Ok(r) => {
            let verb = if r.created { "has been created" } else { "has been updated" };
            list_page(s, sess, ed, Some(format!("{} {:?} {verb}", ed.kind, r.name))).await
        }
        Err(e) => editor_page(s, sess, ed, &f.yaml, update, Some(&e)).await,
    }
}

async fn delete(s: &WebState, headers: &HeaderMap, mut sess: WebSession, ed: Editor, name: &str, csrf: &str) -> Response {
    let root = s.auth.cluster_name().to_string();
    let result = async {
        check_form(headers, &sess, csrf)?;
        let _: Value = super::api(s, &mut sess, &root)
            .await?
            .call(hyper::Method::DELETE, &format!("/v1/resources/{}/{}", ed.kind, encode_segment(name)), None::<&()>)
            .await?;
        Ok::<_, Error>(())
    }
    .await;
    match result {
        Ok(()) => list_page(s, sess, ed, Some(format!("{} {name:?} has been deleted", ed.kind))).await,
        Err(e) => {
            let nav = nav(s, &mut sess, &root, ed.active).await;
            error_page(Some(&nav), &e)
        }
    }
}

/// `GET /web/roles`.
pub async fn roles(State(s): State<Arc<WebState>>, Web(sess): Web) -> Response {
    list_page(&s, sess, ROLES, None).await
}

/// `GET /web/roles/new`.
pub async fn new_role(State(s): State<Arc<WebState>>, Web(sess): Web) -> Response {
    editor_page(&s, sess, ROLES, ROLES.template, false, None).await
}

/// `GET /web/roles/<name>/edit`.
pub async fn edit_role(State(s): State<Arc<WebState>>, Web(sess): Web, Path(name): Path<String>) -> Response {
    edit_page(&s, sess, ROLES, &name).await
}

/// `POST /web/roles`: create or update from YAML, validated as `tctl create` does.
pub async fn save_role(State(s): State<Arc<WebState>>, headers: HeaderMap, Web(sess): Web, Form(f): Form<YamlForm>) -> Response {
    save(&s, &headers, sess, ROLES, f).await
}

/// `POST /web/roles/<name>/delete`.
pub async fn delete_role(
    State(s): State<Arc<WebState>>,
    headers: HeaderMap,
    Web(sess): Web,
    Path(name): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    delete(&s, &headers, sess, ROLES, &name, &f.csrf).await
}

/// `GET /web/trust` (on a leaf).
pub async fn trust(State(s): State<Arc<WebState>>, Web(sess): Web) -> Response {
    list_page(&s, sess, TRUST, None).await
}

/// `GET /web/trust/<name>/edit`.
pub async fn edit_trust(State(s): State<Arc<WebState>>, Web(sess): Web, Path(name): Path<String>) -> Response {
    edit_page(&s, sess, TRUST, &name).await
}

/// `POST /web/trust`: create (the handshake with the root runs; its error is shown as is) or update.
pub async fn save_trust(State(s): State<Arc<WebState>>, headers: HeaderMap, Web(sess): Web, Form(f): Form<YamlForm>) -> Response {
    save(&s, &headers, sess, TRUST, f).await
}

/// `POST /web/trust/<name>/delete`.
pub async fn delete_trust(
    State(s): State<Arc<WebState>>,
    headers: HeaderMap,
    Web(sess): Web,
    Path(name): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    delete(&s, &headers, sess, TRUST, &name, &f.csrf).await
}

/// The launcher's address for app `a` of `cluster`: by cluster and the app's own address (or
/// name), so the same name in two clusters opens the one chosen (Teleport's launcher).
fn launch_url(fqdn: &str, cluster: &str, a: &shared::resource::App) -> String {
    let addr = if a.spec.public_addr.is_empty() { a.metadata.name.as_str() } else { a.spec.public_addr.as_str() };
    format!("/web/launch/{}/{}/{}", encode_segment(fqdn), encode_segment(cluster), encode_segment(addr))
}

#[derive(Deserialize, Default)]
pub struct LaunchQuery {
    #[serde(default)]
    path: String,
    #[serde(default)]
    state: String,
}

/// `GET /web/launch/<fqdn>[/<cluster>/<public addr>]` (reference §3.2): sends the browser to the
/// app's host for the launch's state cookie, and when it comes back with the state, creates the
/// app session (as the user, through the API: the same checks as `tsh apps login`) and sends the
/// browser to the app's host to take it, the session id in the URL's fragment.
pub async fn launch(
    State(s): State<Arc<WebState>>,
    Web(mut sess): Web,
    Path(rest): Path<String>,
    Query(q): Query<LaunchQuery>,
    headers: HeaderMap,
) -> Response {
    match launch_to(&s, &mut sess, &rest, &q, &headers).await {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(e) => {
            let root = s.auth.cluster_name().to_string();
            let nav = nav(&s, &mut sess, &root, "nodes").await;
            error_page(Some(&nav), &e)
        }
    }
}

/// Where [`launch`] sends the browser.
async fn launch_to(s: &WebState, sess: &mut WebSession, rest: &str, q: &LaunchQuery, headers: &HeaderMap) -> Result<String, Error> {
    let root = s.auth.cluster_name().to_string();
    let public = s.ping.public_addr.clone();
    let mut parts = rest.splitn(3, '/');
    let fqdn = parts.next().unwrap_or_default().to_string();
    let chosen = match (parts.next(), parts.next()) {
        (Some(c), Some(a)) if !c.is_empty() && !a.is_empty() => Some((c.to_string(), a.to_string())),
        _ => None,
    };
    // Only a name under this proxy, and never with a port: a launch may not lead elsewhere.
    if fqdn.contains(':') || shared::app::host_only(&fqdn) != fqdn || !shared::app::under(&fqdn, &public) {
        return Err(Error::bad_parameter(format!(
            "{fqdn:?} is not an application address of this proxy; applications are opened at <app>.{}",
            shared::app::host_only(&public)
        )));
    }
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return Err(Error::access_denied("request refused: an application launch may not come from another site"));
    }
    let port = match public.rsplit_once(':').map(|(_, p)| p) {
        Some("443") | None => String::new(),
        Some(p) => format!(":{p}"),
    };
    let path = shared::app::safe_path(if q.path.is_empty() { "/" } else { &q.path });
    if q.state.is_empty() {
        let mut to = format!("https://{fqdn}{port}{}?path={}", shared::app::AUTH_PATH, shared::sso::query_escape(&path));
        if let Some((c, a)) = &chosen {
            to.push_str(&format!("&cluster={}&addr={}", shared::sso::query_escape(c), shared::sso::query_escape(a)));
        }
        return Ok(to);
    }
    if q.state.len() > 64 || !q.state.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::bad_parameter("malformed launch state; open the application again"));
    }
    let (cluster, app) = resolve_app(s, sess, &fqdn, chosen.as_ref()).await?;
    let req = shared::api::CreateAppSessionRequest {
        name: app.metadata.name.clone(),
        public_addr: app.spec.public_addr.clone(),
        cluster_name: cluster,
        fqdn: fqdn.clone(),
        tls_public_key: String::new(),
        web_session: Some(sess.id.clone()),
    };
    let a: shared::api::AppSession = super::api(s, sess, &root).await?.post(path::APP_SESSIONS, &req).await?;
    Ok(format!(
        "https://{fqdn}{port}{}?state={}&subject={}&path={}#value={}",
        shared::app::AUTH_PATH,
        q.state,
        a.subject,
        shared::sso::query_escape(&path),
        a.session_id
    ))
}

/// The app a launch names: by cluster and address when the resources page chose it, else by
/// the host name alone: an app of this cluster at that name first, then a leaf's app claiming
/// it as its own `public_addr`, then the apps of that name in every cluster the user may see.
/// A name two clusters answer to is reported, never resolved to the first.
async fn resolve_app(
    s: &WebState,
    sess: &mut WebSession,
    fqdn: &str,
    chosen: Option<&(String, String)>,
) -> Result<(String, shared::resource::App), Error> {
    let root = s.auth.cluster_name().to_string();
    let public = s.ping.public_addr.clone();
    let app_url = format!("{}/app", path::RESOURCES);
    let at = |a: &shared::resource::App| shared::app::fqdn_at(&a.metadata.name, &a.spec.public_addr, &public);
    let not_found = || Error::not_found(format!("no application you may use answers at {fqdn}; the resources page lists those you may"));
    if let Some((cluster, addr)) = chosen {
        let apps: Vec<shared::resource::App> = super::api(s, sess, cluster).await?.get(&app_url).await?;
        let app = apps
            .into_iter()
            .find(|a| if a.spec.public_addr.is_empty() { a.metadata.name == *addr } else { a.spec.public_addr == *addr })
            .ok_or_else(not_found)?;
        // The address the browser is at must be this app's (never another's host or port).
        if at(&app).as_deref() != Some(fqdn) {
            return Err(Error::bad_parameter(format!("{fqdn} is not the address of application {:?} of {cluster}", app.metadata.name)));
        }
        return Ok((cluster.clone(), app));
    }
    let mut clusters = visible_clusters(s, sess).await;
    if !clusters.contains(&root) {
        clusters.insert(0, root.clone());
    }
    let mut by_claim = Vec::new();
    let mut by_name = Vec::new();
    for c in &clusters {
        let Ok(api) = super::api(s, sess, c).await else { continue };
        let Ok(apps) = api.get::<Vec<shared::resource::App>>(&app_url).await else { continue };
        for a in apps {
            if at(&a).as_deref() != Some(fqdn) {
                continue;
            }
            let claimed = !a.spec.public_addr.is_empty() && shared::app::host_only(&a.spec.public_addr) == fqdn;
            if *c == root {
                // This cluster's own apps come first.
                return Ok((c.clone(), a));
            }
            if claimed { by_claim.push((c.clone(), a)) } else { by_name.push((c.clone(), a)) }
        }
    }
    let listed = |v: &[(String, shared::resource::App)]| v.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>().join(", ");
    match by_claim.len() {
        1 => return Ok(by_claim.remove(0)),
        0 => {}
        _ => {
            tracing::warn!(fqdn, clusters = %listed(&by_claim), "refused an address several leaves' apps claim as their public_addr");
            return Err(Error::already_exists(format!(
                "{fqdn} is claimed by applications of several clusters ({}); open the one you want from the resources page",
                listed(&by_claim)
            )));
        }
    }
    match by_name.len() {
        1 => Ok(by_name.remove(0)),
        0 => Err(not_found()),
        _ => Err(Error::already_exists(format!(
            "application {:?} exists in several clusters ({}); open the one you want from the resources page, which launches it by cluster",
            by_name[0].1.metadata.name,
            listed(&by_name)
        ))),
    }
}
