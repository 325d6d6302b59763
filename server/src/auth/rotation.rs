//! CA rotation, Teleport's phases as pure transitions over a CA (reference §2.3 `rotation`):
//!
//! ```text
//!   standby ──init──▶ init ──▶ update_clients ──▶ update_servers ──▶ standby
//!             (new keys trusted,   (new keys sign,                    (old keys dropped)
//!              old keys sign)       old still trusted)
//!   init | update_clients | update_servers ──▶ rollback ──▶ standby
//!             (old keys sign again, new still trusted until standby)
//! ```
//! `auto` mode walks the phases on a schedule (a third of the grace period each); a grace
//! period of 0 is the emergency rotation: new keys at once, the old ones dropped at once.

use std::time::Duration;

use shared::error::{Error, Result};
use shared::resource::CertAuthority;
use shared::resource::cert_authority::{CaKeySet, Rotation, RotationSchedule};
use time::OffsetDateTime;

/// A rotation phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No rotation.
    Standby,
    /// New keys are trusted; the old ones still sign.
    Init,
    /// New keys sign; clients get new certificates.
    UpdateClients,
    /// Servers get new certificates.
    UpdateServers,
    /// Back to the old keys.
    Rollback,
}

impl Phase {
    /// Parses Teleport's name.
    pub fn parse(s: &str) -> Result<Phase> {
        Ok(match s {
            "standby" | "" => Phase::Standby,
            "init" => Phase::Init,
            "update_clients" => Phase::UpdateClients,
            "update_servers" => Phase::UpdateServers,
            "rollback" => Phase::Rollback,
            _ => {
                return Err(Error::bad_parameter(format!(
                    "unsupported phase {s:?}: use init, update_clients, update_servers, standby or rollback"
                )));
            }
        })
    }

    /// Teleport's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Standby => "standby",
            Phase::Init => "init",
            Phase::UpdateClients => "update_clients",
            Phase::UpdateServers => "update_servers",
            Phase::Rollback => "rollback",
        }
    }
}

/// The phase a CA is in.
pub fn phase_of(ca: &CertAuthority) -> Phase {
    ca.spec.rotation.as_ref().and_then(|r| Phase::parse(&r.phase).ok()).unwrap_or(Phase::Standby)
}

fn in_progress(ca: &CertAuthority) -> bool {
    ca.spec.rotation.as_ref().is_some_and(|r| r.state == "in_progress")
}

/// What is asked.
#[derive(Debug, Clone, Copy)]
pub enum Ask {
    /// `tctl auth rotate [--grace-period=D]`: an automatic rotation (D = 0: at once).
    Auto { grace: Duration },
    /// `tctl auth rotate --manual --phase=P [--grace-period=D]`.
    Manual { phase: Phase, grace: Duration },
}

fn schedule(now: OffsetDateTime, grace: Duration) -> RotationSchedule {
    RotationSchedule { update_clients: Some(now + grace / 3), update_servers: Some(now + grace * 2 / 3), standby: Some(now + grace) }
}

fn started(mode: &str, grace: Duration, now: OffsetDateTime) -> Rotation {
    Rotation {
        state: "in_progress".into(),
        phase: Phase::Init.as_str().into(),
        mode: mode.into(),
        current_id: uuid::Uuid::new_v4().to_string(),
        started: Some(now),
        grace_period: shared::timefmt::go_duration(grace),
        last_rotated: None,
        schedule: (mode == "auto").then(|| schedule(now, grace)),
    }
}

/// `ca` after `ask`; `fresh` makes the new keys when a rotation starts.
pub fn apply(ca: &CertAuthority, ask: Ask, now: OffsetDateTime, fresh: impl FnOnce() -> Result<CaKeySet>) -> Result<CertAuthority> {
    let mut next = ca.clone();
    let last = ca.spec.rotation.clone().unwrap_or_default();
    match ask {
        Ask::Auto { grace } => {
            if in_progress(ca) {
                return Err(Error::bad_parameter(format!(
                    "a rotation of the {} CA is already in progress (phase {}); finish it with --manual --phase, or roll it back with --manual --phase=rollback",
                    ca.spec.ca_type, last.phase
                )));
            }
            let keys = fresh()?;
            if grace.is_zero() {
                // The emergency: new keys sign and are the only ones trusted, now.
                next.spec.active_keys = keys;
                next.spec.additional_trusted_keys = CaKeySet::default();
                let mut r = started("auto", grace, now);
                r.state = "standby".into();
                r.phase = Phase::Standby.as_str().into();
                r.last_rotated = Some(now);
                r.schedule = None;
                next.spec.rotation = Some(r);
            } else {
                next.spec.additional_trusted_keys = keys;
                next.spec.rotation = Some(started("auto", grace, now));
            }
            Ok(next)
        }
        Ask::Manual { phase, grace } => step(ca, next, phase, grace, now, fresh),
    }
}

/// The next automatic phase, if one is due.
pub fn due(ca: &CertAuthority, now: OffsetDateTime) -> Option<Phase> {
    let r = ca.spec.rotation.as_ref()?;
    if r.state != "in_progress" || r.mode != "auto" {
        return None;
    }
    let s = r.schedule.as_ref()?;
    let at = |t: &Option<OffsetDateTime>| t.is_some_and(|t| now >= t);
    match phase_of(ca) {
        Phase::Init if at(&s.update_clients) => Some(Phase::UpdateClients),
        Phase::UpdateClients if at(&s.update_servers) => Some(Phase::UpdateServers),
        Phase::UpdateServers if at(&s.standby) => Some(Phase::Standby),
        _ => None,
    }
}

/// Moves `ca` to `phase` (manual steps, and the automatic ones when due).
pub fn step(
    ca: &CertAuthority,
    mut next: CertAuthority,
    phase: Phase,
    grace: Duration,
    now: OffsetDateTime,
    fresh: impl FnOnce() -> Result<CaKeySet>,
) -> Result<CertAuthority> {
    let from = phase_of(ca);
    let refuse = || {
        Err(Error::bad_parameter(format!(
            "can not rotate the {} CA to phase {:?} from phase {:?}; the order is init, update_clients, update_servers, standby (or rollback, then standby)",
            ca.spec.ca_type,
            phase.as_str(),
            from.as_str()
        )))
    };
    let mut r = ca.spec.rotation.clone().unwrap_or_default();
    let swap = |n: &mut CertAuthority| std::mem::swap(&mut n.spec.active_keys, &mut n.spec.additional_trusted_keys);
    match (from, phase) {
        (Phase::Standby, Phase::Init) if !in_progress(ca) => {
            next.spec.additional_trusted_keys = fresh()?;
            let mut s = started("manual", grace, now);
            s.last_rotated = r.last_rotated;
            r = s;
        }
        (Phase::Init, Phase::UpdateClients) => swap(&mut next),
        (Phase::UpdateClients, Phase::UpdateServers) => {}
        (Phase::UpdateServers | Phase::Rollback, Phase::Standby) => {
            next.spec.additional_trusted_keys = CaKeySet::default();
            r.state = "standby".into();
            r.last_rotated = Some(now);
            r.schedule = None;
        }
        (Phase::Init, Phase::Rollback) => {}
        (Phase::UpdateClients | Phase::UpdateServers, Phase::Rollback) => swap(&mut next),
        _ => return refuse(),
    }
    r.phase = phase.as_str().into();
    next.spec.rotation = Some(r);
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::resource::CaType;

    fn ca() -> CertAuthority {
        crate::auth::ca::new_ca(CaType::User, "root", OffsetDateTime::now_utc()).unwrap()
    }
    fn keys() -> Result<CaKeySet> {
        Ok(crate::auth::ca::new_ca(CaType::User, "root", OffsetDateTime::now_utc())?.spec.active_keys)
    }
    fn signing(c: &CertAuthority) -> Vec<u8> {
        c.spec.active_keys.ssh[0].public_key.clone()
    }
    fn trusted(c: &CertAuthority) -> Vec<String> {
        c.ssh_public_keys().iter().map(shared::certs::authorized_key).collect()
    }
    fn manual(c: &CertAuthority, p: &str) -> Result<CertAuthority> {
        apply(c, Ask::Manual { phase: Phase::parse(p).unwrap(), grace: Duration::from_secs(3600) }, OffsetDateTime::now_utc(), keys)
    }

    #[test]
    fn manual_phases_trust_both_keys_until_standby() {
        let c0 = ca();
        let old = signing(&c0);
        let init = manual(&c0, "init").unwrap();
        assert_eq!(signing(&init), old, "init: the old key still signs");
        assert_eq!(trusted(&init).len(), 2, "init: the new key is trusted");
        let r = init.spec.rotation.clone().unwrap();
        assert_eq!(
            (r.state.as_str(), r.phase.as_str(), r.mode.as_str(), r.grace_period.as_str()),
            ("in_progress", "init", "manual", "1h0m0s")
        );
        let uc = manual(&init, "update_clients").unwrap();
        assert_ne!(signing(&uc), old, "update_clients: the new key signs");
        assert_eq!(trusted(&uc).len(), 2);
        let us = manual(&uc, "update_servers").unwrap();
        assert_eq!(signing(&us), signing(&uc));
        let done = manual(&us, "standby").unwrap();
        assert_eq!(trusted(&done), trusted(&uc)[..1].to_vec(), "standby: only the new key");
        let r = done.spec.rotation.unwrap();
        assert_eq!((r.state.as_str(), r.phase.as_str()), ("standby", "standby"));
        assert!(r.last_rotated.is_some());
    }

    #[test]
    fn out_of_order_is_refused_and_rollback_restores_the_old_key() {
        let c0 = ca();
        let old = signing(&c0);
        for p in ["update_clients", "update_servers", "standby", "rollback"] {
            assert!(manual(&c0, p).unwrap_err().message.contains("can not rotate the user CA"), "{p}");
        }
        let init = manual(&c0, "init").unwrap();
        assert!(manual(&init, "init").is_err(), "one rotation at a time");
        assert!(manual(&init, "update_servers").is_err());
        let uc = manual(&init, "update_clients").unwrap();
        let rb = manual(&uc, "rollback").unwrap();
        assert_eq!(signing(&rb), old, "rollback: the old key signs again");
        assert_eq!(trusted(&rb).len(), 2, "certificates of the new key still work until standby");
        let done = manual(&rb, "standby").unwrap();
        assert_eq!(signing(&done), old);
        assert_eq!(trusted(&done).len(), 1);
        assert!(manual(&rb, "update_clients").is_err());
    }

    #[test]
    fn auto_walks_the_schedule_and_zero_grace_is_at_once() {
        let c0 = ca();
        let now = OffsetDateTime::now_utc();
        let auto = apply(&c0, Ask::Auto { grace: Duration::from_secs(30 * 3600) }, now, keys).unwrap();
        let r = auto.spec.rotation.clone().unwrap();
        assert_eq!((r.phase.as_str(), r.mode.as_str(), r.grace_period.as_str()), ("init", "auto", "30h0m0s"));
        assert!(apply(&auto, Ask::Auto { grace: Duration::from_secs(60) }, now, keys).is_err(), "already in progress");
        assert_eq!(due(&auto, now), None);
        assert_eq!(due(&auto, now + Duration::from_secs(10 * 3600)), Some(Phase::UpdateClients));
        let uc = step(&auto, auto.clone(), Phase::UpdateClients, Duration::ZERO, now, keys).unwrap();
        assert_eq!(due(&uc, now + Duration::from_secs(19 * 3600)), None);
        assert_eq!(due(&uc, now + Duration::from_secs(20 * 3600)), Some(Phase::UpdateServers));
        let now_ = apply(&c0, Ask::Auto { grace: Duration::ZERO }, now, keys).unwrap();
        assert_ne!(signing(&now_), signing(&c0));
        assert_eq!(trusted(&now_).len(), 1, "the emergency drops the old key at once");
        assert_eq!(now_.spec.rotation.unwrap().state, "standby");
    }

    #[test]
    fn servers_move_to_the_new_key_in_update_servers_and_back_in_rollback() {
        use russh::keys::ssh_key::certificate::CertType;
        let host_ca = |t| crate::auth::ca::new_ca(t, "root", OffsetDateTime::now_utc()).unwrap();
        let cert_of = |c: &CertAuthority| {
            let signer = crate::auth::ca::signer(c).unwrap();
            let (key, _, _) = shared::certs::new_key_pair().unwrap();
            let now = OffsetDateTime::now_utc();
            let p = shared::certs::SshCertParams {
                cert_type: CertType::Host,
                key_id: "h".into(),
                principals: vec!["h".into()],
                extensions: vec![],
                not_before: now,
                not_after: now + Duration::from_secs(60),
            };
            shared::certs::sign_ssh_cert(&signer.ssh, key.public_key(), &p).unwrap()
        };
        let fresh = || Ok(host_ca(CaType::Host).spec.active_keys);
        let step_to = |c: &CertAuthority, p: &str| {
            apply(c, Ask::Manual { phase: Phase::parse(p).unwrap(), grace: Duration::from_secs(3600) }, OffsetDateTime::now_utc(), fresh)
                .unwrap()
        };
        let c0 = host_ca(CaType::Host);
        let old = cert_of(&c0);
        assert!(!crate::ssh::needs_renewal(&c0, &old), "no rotation: keep");
        let init = step_to(&c0, "init");
        assert!(!crate::ssh::needs_renewal(&init, &old), "init: the old key still signs");
        let uc = step_to(&init, "update_clients");
        assert!(!crate::ssh::needs_renewal(&uc, &old), "update_clients: clients may not trust the new key yet");
        let us = step_to(&uc, "update_servers");
        assert!(crate::ssh::needs_renewal(&us, &old), "update_servers: servers move to the new key");
        let new = cert_of(&us);
        assert!(!crate::ssh::needs_renewal(&us, &new));
        let rb = step_to(&us, "rollback");
        assert!(crate::ssh::needs_renewal(&rb, &new), "rollback: back to the old key");
        assert!(!crate::ssh::needs_renewal(&rb, &old));
        let done = step_to(&us, "standby");
        assert!(crate::ssh::needs_renewal(&done, &old), "a process that missed update_servers renews at standby");
        let emergency = apply(&c0, Ask::Auto { grace: Duration::ZERO }, OffsetDateTime::now_utc(), fresh).unwrap();
        assert!(crate::ssh::needs_renewal(&emergency, &old), "an emergency rotation renews at once");
    }
}

/// Rotation as a service of the auth server: requests, the automatic schedule, and the root's
/// CAs arriving at a leaf.
mod service {
    use std::sync::Arc;
    use std::time::Duration;

    use shared::error::{Error, Kind, Result};
    use shared::resource::{CaType, CertAuthority};

    use super::{Ask, apply, due, step};
    use crate::auth::AuthServer;
    use crate::services::keys;
    use crate::shutdown::Shutdown;

    impl AuthServer {
        /// `tctl auth rotate`: applies `ask` to this cluster's CAs of `types` (user, host, or
        /// both), atomically: a concurrent change of either CA makes this fail, never
        /// half-apply, and both move together or neither does.
        pub async fn rotate(&self, types: &[CaType], ask: Ask) -> Result<Vec<CertAuthority>> {
            let now = self.clock.now();
            let cluster = self.cluster_name().to_string();
            let (mut ops, mut done) = (Vec::new(), Vec::new());
            for &t in types {
                let key = keys::ca(t, self.cluster_name());
                let cur = self
                    .services
                    .get::<CertAuthority>(&key)
                    .await?
                    .ok_or_else(|| Error::internal(format!("the {t} certificate authority of this cluster is missing")))?;
                let fresh = || Ok(crate::auth::ca::new_ca(t, &cluster, now)?.spec.active_keys);
                let next = apply(&cur.value, ask, now, fresh)?;
                ops.push(self.services.cas_op(&key, &next, cur.revision)?);
                done.push(next);
            }
            self.services.apply(ops).await.map_err(|e| {
                if e.is(Kind::CompareFailed) { Error::compare_failed("the CA changed while rotating it; try again") } else { e }
            })?;
            for next in &done {
                let r = next.spec.rotation.clone().unwrap_or_default();
                tracing::info!(ca = %next.id(), phase = %r.phase, state = %r.state, mode = %r.mode, "certificate authority rotation");
                self.audit
                    .emit(
                        crate::audit::codes::CA_ROTATE,
                        serde_json::json!({"cert_type": next.spec.ca_type.as_str(), "phase": r.phase, "state": r.state, "mode": r.mode, "grace_period": r.grace_period}),
                    )
                    .await;
            }
            self.authz_changed();
            Ok(done)
        }

        /// Walks automatic rotations through their schedule, every second, until `shutdown`.
        /// Any process may take a step: the compare-and-swap lets exactly one win.
        pub async fn run_auto_rotation(self: Arc<Self>, shutdown: Shutdown) {
            crate::shutdown::every(Duration::from_secs(1), shutdown, || async {
                for t in [CaType::User, CaType::Host, CaType::Db, CaType::Jwt] {
                    let key = keys::ca(t, self.cluster_name());
                    let Ok(Some(cur)) = self.services.get::<CertAuthority>(&key).await else { continue };
                    let now = self.clock.now();
                    let Some(phase) = due(&cur.value, now) else { continue };
                    let never = || Err(Error::internal("no new keys in the middle of a rotation"));
                    let Ok(next) = step(&cur.value, cur.value.clone(), phase, Duration::ZERO, now, never) else { continue };
                    let Ok(op) = self.services.cas_op(&key, &next, cur.revision) else { continue };
                    if self.services.apply(vec![op]).await.is_ok() {
                        tracing::info!(ca = %next.id(), phase = phase.as_str(), "automatic rotation moved to the next phase");
                        self.authz_changed();
                    }
                }
            })
            .await
        }

        /// Stores the CAs another cluster sent over the tunnel (Teleport's
        /// `RotateExternalCertAuthority`): a leaf stores its root's user and host CAs, a root
        /// its leaf's host CA (`types` says which this side accepts from that cluster). Only
        /// the keys and the rotation change; the role map stays; a CA this cluster does not
        /// already hold for `other` is never created. Returns whether anything changed.
        pub async fn update_external_cas(&self, other: &str, types: &[CaType], cas: Vec<CertAuthority>) -> Result<bool> {
            if other == self.cluster_name() {
                return Err(Error::bad_parameter("can not rotate local certificate authority"));
            }
            let mut changed = false;
            for ca in cas {
                if ca.metadata.name != other || !types.contains(&ca.spec.ca_type) {
                    continue;
                }
                let ca = ca.without_secrets();
                ca.check()?;
                let key = keys::ca(ca.spec.ca_type, other);
                // Each proxy of the other cluster sends the same CAs: a lost race is a retry.
                let conflict = Error::compare_failed(format!("certificate authority {key} is changing concurrently"));
                changed |= crate::services::retry_cas(3, conflict, || async {
                    let Some(cur) = self.services.get::<CertAuthority>(&key).await? else { return Ok(false) };
                    let mut next = cur.value.clone();
                    next.spec.active_keys = ca.spec.active_keys.clone();
                    next.spec.additional_trusted_keys = ca.spec.additional_trusted_keys.clone();
                    next.spec.rotation = ca.spec.rotation.clone();
                    if next.spec == cur.value.spec {
                        return Ok(false);
                    }
                    self.services.apply(vec![self.services.cas_op(&key, &next, cur.revision)?]).await?;
                    let phase = next.spec.rotation.as_ref().map(|r| r.phase.clone()).unwrap_or_default();
                    tracing::info!(ca = %next.id(), phase = %phase, "stored the other cluster's rotated certificate authority");
                    Ok(true)
                })
                .await?;
            }
            if changed {
                self.authz_changed();
            }
            Ok(changed)
        }
    }
}
