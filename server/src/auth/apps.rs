//! Applications: heartbeats of the `app_service`, apps an admin defines (`tctl create`), and which
//! of them a caller may reach (`app_labels` of their roles, mapped on a leaf).

use shared::error::{Error, Result};
use shared::rbac::AccessChecker;

use super::AuthServer;
use crate::services::keys;

/// An app service serving an app an admin defined (`tctl create`), by its `resources` labels.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AppServer {
    /// The process.
    pub host_id: String,
    /// Its host name.
    pub hostname: String,
    /// Reached through its own tunnel.
    pub tunnel: bool,
}

impl AuthServer {
    /// Stores a heartbeat of an app this cluster's `app_service` in process `host_id` serves. A
    /// name another live service holds, or an app an admin defined (`tctl create`), is refused.
    pub async fn upsert_app_server(&self, mut app: shared::resource::App, host_id: &str) -> Result<()> {
        app.check_and_set_defaults()?;
        app.spec.host_id = host_id.to_string();
        let now = self.clock.now();
        if let Some(old) = self.services.get::<shared::resource::App>(&keys::app(&app.metadata.name)).await? {
            let v = old.value;
            let live = v.metadata.expires.is_none_or(|e| e > now);
            if live && v.spec.host_id != host_id {
                let by = if v.spec.host_id.is_empty() {
                    "an admin (tctl create)".to_string()
                } else {
                    format!("{} ({})", v.spec.hostname, v.spec.host_id)
                };
                return Err(Error::already_exists(format!(
                    "app {:?} is already defined by {by}; give this one another name in app_service.apps",
                    app.metadata.name
                )));
            }
        }
        app.metadata.expires = Some(super::nodes::heartbeat_expiry(app.metadata.expires, now));
        let op = self.services.put_op(&keys::app(&app.metadata.name), &app)?;
        self.services.apply(vec![op]).await.map(|_| ())
    }

    /// Removes app `name` if the service in process `host_id` still holds it (its service
    /// stopped; the record would otherwise expire by itself).
    pub async fn leave_app(&self, name: &str, host_id: &str) {
        let key = keys::app(name);
        if let Ok(Some(v)) = self.services.get::<shared::resource::App>(&key).await
            && v.value.spec.host_id == host_id
        {
            let _ = self.services.apply(vec![crate::storage::Op::DeleteIfExists { key }]).await;
        }
    }

    /// The apps an admin defined (`tctl create`), for app services whose `resources` match them.
    pub async fn defined_apps(&self) -> Result<Vec<shared::resource::App>> {
        let all: Vec<shared::resource::App> = self.services.list(keys::APPS).await?;
        Ok(all.into_iter().filter(|a| a.spec.host_id.is_empty()).collect())
    }

    /// Records that process `host_id` serves defined app `name` (three heartbeats).
    pub async fn serve_defined_app(&self, name: &str, server: AppServer, heartbeat: std::time::Duration) -> Result<()> {
        shared::names::check_name("app name", name)?;
        let expires = (self.clock.now() + heartbeat * 3).unix_timestamp();
        let op = crate::storage::Op::Put {
            key: keys::app_server(name, &server.host_id),
            value: crate::services::encode(&server)?,
            expires: Some(expires),
        };
        self.services.apply(vec![op]).await.map(|_| ())
    }

    /// The live app services serving defined app `name`.
    pub async fn servers_of_app(&self, name: &str) -> Result<Vec<AppServer>> {
        let items = self.services.backend.list(&format!("{}{name}/", keys::APP_SERVERS)).await?;
        Ok(items.into_iter().filter_map(|i| serde_json::from_slice::<AppServer>(&i.value).ok()).collect())
    }

    /// The key that signs apps' tokens now (this cluster's `jwt` CA's active key).
    pub async fn app_token_signer(&self) -> Result<shared::jwt::Signer> {
        let ca = self.own_ca(shared::resource::CaType::Jwt).await?;
        let k = ca.spec.active_keys.jwt.first().ok_or_else(|| Error::internal("the jwt CA has no key"))?;
        shared::jwt::Signer::new(&String::from_utf8_lossy(&k.private_key), &String::from_utf8_lossy(&k.public_key))
    }

    /// Every app `checker` may reach (`None`: all of them), by name.
    pub async fn visible_apps(&self, checker: Option<&AccessChecker>) -> Result<Vec<shared::resource::App>> {
        let mut all: Vec<shared::resource::App> = self.services.list(keys::APPS).await?;
        if let Some(c) = checker {
            all.retain(|a| c.check_app(&a.metadata.labels).is_ok());
        }
        all.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(all)
    }
}
