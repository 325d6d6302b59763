//! GitHub: the OAuth 2.0 code flow (GitHub has no OpenID Connect), then the user and their
//! teams from the REST API, mapped to roles with `teams_to_roles` (exact organization and team
//! slug, as Teleport's `MapClaims`). The API base is configurable for GitHub Enterprise
//! (`endpoint_url`, `api_endpoint_url`).

use serde_json::Value;
use shared::error::{Error, Result};
use shared::resource::connector::GithubSpec;
use shared::template::Traits;

use super::{ExternalIdentity, SsoRequest, http};

/// The most pages of teams read (Teleport's limit).
const MAX_PAGES: usize = 99;

/// The login URL at GitHub for `req`.
pub fn login_url(spec: &GithubSpec, req: &mut SsoRequest) -> Result<String> {
    let base = spec.endpoint();
    http::check_url("github connector endpoint_url", &base)?;
    req.redirect_uri = spec.redirect_url.clone();
    let q = |s: &str| shared::sso::query_escape(s);
    Ok(format!(
        "{base}/login/oauth/authorize?client_id={}&redirect_uri={}&scope={}&state={}",
        q(&spec.client_id),
        q(&spec.redirect_url),
        q("read:org"),
        q(&req.id)
    ))
}

/// One team of the user, as the API lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    /// The organization's login.
    pub org: String,
    /// The team's slug (what `teams_to_roles` names).
    pub slug: String,
    /// The team's display name.
    pub name: String,
}

/// The roles of a user in `teams` (exact organization and slug matches, in the connector's order).
pub fn map_teams(spec: &GithubSpec, teams: &[Team]) -> Vec<String> {
    let mut roles: Vec<String> = Vec::new();
    for (org, team, granted) in spec.mappings() {
        if teams.iter().any(|t| t.org == org && t.slug == team) {
            for r in granted {
                if !roles.contains(&r) {
                    roles.push(r);
                }
            }
        }
    }
    roles
}

/// The traits Teleport gives a GitHub user.
pub fn traits(login: &str, teams: &[Team]) -> Traits {
    let mut t = Traits::new();
    t.insert("logins".into(), vec![login.to_string()]);
    t.insert("github_teams".into(), teams.iter().map(|x| x.name.clone()).collect());
    t
}

fn parse_teams(v: &Value) -> Result<Vec<Team>> {
    let arr = v.as_array().ok_or_else(|| Error::access_denied("GitHub's team list is not a list"))?;
    Ok(arr
        .iter()
        .filter_map(|t| {
            Some(Team {
                org: t.get("organization")?.get("login")?.as_str()?.to_string(),
                slug: t.get("slug")?.as_str()?.to_string(),
                name: t.get("name").and_then(|n| n.as_str()).unwrap_or_default().to_string(),
            })
        })
        .collect())
}

/// The `rel="next"` URL of a `Link` header.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.split(';').any(|p| p.trim() == "rel=\"next\"").then(|| url.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

/// Checks GitHub's callback for `req` and says who the user is.
pub async fn callback(spec: &GithubSpec, req: &SsoRequest, query: &[(String, String)]) -> Result<ExternalIdentity> {
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Some(err) = get("error") {
        let desc = get("error_description").unwrap_or_default();
        return Err(Error::access_denied(format!(
            "GitHub refused the login: {err}{}",
            if desc.is_empty() { String::new() } else { format!(": {desc}") }
        )));
    }
    let code = get("code").filter(|c| !c.is_empty()).ok_or_else(|| Error::access_denied("GitHub's answer has no code"))?;
    let token_url = format!("{}/login/oauth/access_token", spec.endpoint());
    http::check_url("github connector endpoint_url", &token_url)?;
    let token = http::post_form(
        &token_url,
        &[("client_id", &spec.client_id), ("client_secret", &spec.client_secret), ("code", &code), ("redirect_uri", &req.redirect_uri)],
        &[],
    )
    .await?;
    if let Some(err) = token.get("error").and_then(|e| e.as_str()) {
        let desc = token.get("error_description").and_then(|d| d.as_str()).unwrap_or_default();
        return Err(Error::access_denied(format!("exchanging the code at GitHub failed: {err}: {desc}")));
    }
    let access = token
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::access_denied("GitHub returned no access token"))?;
    let auth = format!("token {access}");
    let headers = [("Authorization", auth.as_str()), ("Accept", "application/vnd.github+json")];
    let api = spec.api_endpoint();
    http::check_url("github connector api_endpoint_url", &api)?;
    let user = http::get_json(&format!("{api}/user"), &headers).await?;
    let login = user
        .get("login")
        .and_then(|l| l.as_str())
        .filter(|l| !l.is_empty())
        .ok_or_else(|| Error::access_denied("GitHub's user has no login"))?
        .to_string();
    let mut teams = Vec::new();
    let mut next = Some(format!("{api}/user/teams"));
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        if pages > MAX_PAGES {
            return Err(Error::access_denied(format!("GitHub's team list has more than {MAX_PAGES} pages")));
        }
        // Follow only pages on the API's own origin.
        if !url.starts_with(&format!("{api}/")) {
            return Err(Error::access_denied(format!("GitHub's next page {url:?} is not on {api}")));
        }
        let (body, link) = http::get_json_link(&url, &headers).await?;
        teams.extend(parse_teams(&body)?);
        next = link.as_deref().and_then(next_link);
    }
    if teams.is_empty() {
        return Err(Error::access_denied("list of user teams is empty, did you grant access?"));
    }
    let roles = map_teams(spec, &teams);
    if roles.is_empty() {
        return Err(Error::access_denied(format!(
            "user {login:?} does not belong to any teams configured in connector {:?}; the attributes may not match any roles",
            req.connector
        )));
    }
    Ok(ExternalIdentity { username: login.clone(), traits: traits(&login, &teams), roles })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::resource::connector::TeamMapping;

    #[test]
    fn teams_map_exactly() {
        let spec = GithubSpec {
            teams_to_roles: vec![
                TeamMapping {
                    organization: "acme".into(),
                    team: "admins".into(),
                    roles: vec!["access".into(), "editor".into()],
                    logins: vec![],
                },
                TeamMapping { organization: "acme".into(), team: "devs".into(), roles: vec!["access".into()], logins: vec![] },
            ],
            ..Default::default()
        };
        let t = |org: &str, slug: &str| Team { org: org.into(), slug: slug.into(), name: slug.to_uppercase() };
        assert_eq!(map_teams(&spec, &[t("acme", "admins"), t("acme", "devs")]), vec!["access", "editor"]);
        assert!(map_teams(&spec, &[t("acme", "admin"), t("Acme", "devs"), t("other", "admins")]).is_empty());
        assert_eq!(traits("alice", &[t("acme", "devs")]).get("github_teams"), Some(&vec!["DEVS".to_string()]));
    }

    #[test]
    fn link_headers_give_the_next_page() {
        let l = r#"<https://api.example/user/teams?page=2>; rel="next", <https://api.example/user/teams?page=5>; rel="last""#;
        assert_eq!(next_link(l).as_deref(), Some("https://api.example/user/teams?page=2"));
        assert_eq!(next_link(r#"<https://api.example/user/teams?page=1>; rel="prev""#), None);
    }
}
