//! The cluster's authentication preference (`cluster_auth_preference`): stored once per cluster
//! at `cluster/auth_preference`. `auth_service.authentication` in teleport.yaml, when present,
//! is written at every start (labelled `teleport.dev/origin: config-file`); otherwise a new
//! cluster starts with Teleport's current default: local users with a TOTP code required.

use shared::error::{Error, Result};
use shared::resource::AuthPreference;
use shared::resource::auth_preference::{AuthPreferenceSpec, ORIGIN_LABEL};

use super::AuthServer;
use crate::services::keys;

impl AuthServer {
    /// The preference in force (the default until one is stored).
    pub async fn auth_preference(&self) -> Result<AuthPreference> {
        Ok(self
            .services
            .get::<AuthPreference>(keys::AUTH_PREFERENCE)
            .await?
            .map(|v| v.value)
            .unwrap_or_else(AuthPreference::default_for_new_cluster))
    }

    /// At start: the configuration file's preference, or the default if none is stored yet.
    pub async fn init_auth_preference(&self, from_config: Option<&AuthPreferenceSpec>) -> Result<()> {
        match from_config {
            Some(spec) => {
                let mut p = AuthPreference::new(spec.clone(), "config-file");
                p.check_and_set_defaults().map_err(|e| e.context("auth_service.authentication"))?;
                self.services.apply(vec![self.services.put_op(keys::AUTH_PREFERENCE, &p)?]).await?;
            }
            None => {
                if self.services.backend.get(keys::AUTH_PREFERENCE).await?.is_none() {
                    let p = AuthPreference::default_for_new_cluster();
                    match self.services.apply(vec![self.services.create_op(keys::AUTH_PREFERENCE, &p)?]).await {
                        Ok(_) => {}
                        Err(e) if e.is(shared::Kind::AlreadyExists) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(())
    }

    /// `tctl create [-f] cap.yaml` and `tctl edit cap`: replaces the preference. A default one
    /// is replaced without `-f`; one an administrator set needs `-f` (or an edit's revision).
    pub async fn upsert_auth_preference(&self, mut p: AuthPreference, force: bool, expected: Option<i64>) -> Result<(bool, Vec<String>)> {
        p.check_and_set_defaults()?;
        let existing = self.services.get::<AuthPreference>(keys::AUTH_PREFERENCE).await?;
        let origin = |v: &AuthPreference| v.metadata.labels.get(ORIGIN_LABEL).cloned().unwrap_or_default();
        let mut warnings = Vec::new();
        if let Some(e) = &existing
            && origin(&e.value) == "config-file"
        {
            warnings.push(
                "auth_service.authentication in teleport.yaml sets this preference; it will replace this change when the auth service restarts"
                    .to_string(),
            );
        }
        p.metadata.labels.insert(ORIGIN_LABEL.into(), "dynamic".into());
        let op = match (&existing, expected) {
            (_, Some(rev)) => self.services.cas_op(keys::AUTH_PREFERENCE, &p, rev)?,
            (Some(e), None) if !force && origin(&e.value) != "defaults" => {
                return Err(Error::already_exists("the cluster_auth_preference was already set; use tctl create -f to replace it"));
            }
            _ => self.services.put_op(keys::AUTH_PREFERENCE, &p)?,
        };
        self.services.apply(vec![op]).await.map_err(super::users::edit_conflict)?;
        Ok((false, warnings))
    }

    /// The connector named `name`, of whichever SSO kind.
    pub async fn find_connector(&self, name: &str) -> Result<Option<shared::resource::Connector>> {
        for kind in ["oidc", "github", "saml"] {
            if let Some(c) = self.services.get::<shared::resource::Connector>(&keys::connector(kind, name)).await? {
                return Ok(Some(c.value));
            }
        }
        Ok(None)
    }

    /// Which connector `tsh login` uses by default: `None` for local users, else (kind, name).
    pub async fn default_connector(&self) -> Result<Option<(String, String)>> {
        let p = self.auth_preference().await?;
        if p.spec.auth_type == "local" {
            return Ok(None);
        }
        let kind = p.spec.auth_type.clone();
        if !p.spec.connector_name.is_empty() {
            return Ok(Some((kind, p.spec.connector_name)));
        }
        let prefix = keys::connectors_of(&kind);
        let names: Vec<String> =
            self.services.backend.list(&prefix).await?.iter().filter_map(|i| i.key.strip_prefix(&prefix).map(str::to_string)).collect();
        Ok(names.into_iter().next().map(|n| (kind, n)))
    }
}
