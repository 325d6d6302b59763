//! Applications: heartbeats of the `app_service`, apps an admin defines (`tctl create`), and which
//! of them a caller may reach (`app_labels` of their roles, mapped on a leaf).

use shared::error::{Error, Result};
use shared::rbac::AccessChecker;

use super::AuthServer;
use crate::services::keys;

/// A resource a service heartbeats: who serves it (UUID and host name; empty: an admin's).
pub trait Served {
    /// `(host UUID, host name)`.
    fn served_by(&self) -> (String, String);
}

impl Served for shared::resource::App {
    fn served_by(&self) -> (String, String) {
        (self.spec.host_id.clone(), self.spec.hostname.clone())
    }
}

impl Served for shared::resource::Db {
    fn served_by(&self) -> (String, String) {
        (self.spec.host_id.clone(), self.spec.hostname.clone())
    }
}

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
        let key = keys::app(&app.metadata.name);
        self.upsert_served(&key, app, host_id, "app", "app_service.apps").await
    }

    /// Stores the heartbeat `item` (under `key`) of a resource the service in process `host_id`
    /// serves, refusing a name another live service or an admin's definition holds.
    pub(super) async fn upsert_served<T>(&self, key: &str, mut item: T, host_id: &str, what: &str, field: &str) -> Result<()>
    where
        T: Served + serde::Serialize + serde::de::DeserializeOwned + crate::services::HasMetadata + Clone,
    {
        let now = self.clock.now();
        let name = item.meta().name.clone();
        if let Some(old) = self.services.get::<T>(key).await? {
            let mut v = old.value;
            let live = v.meta().expires.is_none_or(|e| e > now);
            if live && v.served_by().0 != host_id {
                let (id, host) = v.served_by();
                let by = if id.is_empty() { "an admin (tctl create)".to_string() } else { format!("{host} ({id})") };
                return Err(Error::already_exists(format!(
                    "{what} {name:?} is already defined by {by}; give this one another name in {field}"
                )));
            }
        }
        let expires = item.meta().expires;
        item.meta().expires = Some(super::nodes::heartbeat_expiry(expires, now));
        let op = self.services.put_op(key, &item)?;
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
