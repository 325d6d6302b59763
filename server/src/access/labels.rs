//! Dynamic labels of a served resource (a Kubernetes cluster's `commands`, a database's
//! `dynamic_labels`): each a command run every period, the first line of its output the label's
//! value, empty when it fails (a role matching a value then stops matching: deny by default).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use shared::resource::LabelMap;

use crate::config::LabelCommand;
use crate::shutdown::Shutdown;

/// The commands and their latest values.
#[derive(Default)]
pub struct DynamicLabels {
    commands: Vec<LabelCommand>,
    values: Mutex<LabelMap>,
}

impl DynamicLabels {
    /// Labels from these commands (none yet run).
    pub fn new(commands: Vec<LabelCommand>) -> Arc<DynamicLabels> {
        Arc::new(DynamicLabels { commands, values: Mutex::new(LabelMap::new()) })
    }

    /// `labels` with the dynamic ones' latest values.
    pub fn with(&self, labels: &LabelMap) -> LabelMap {
        let mut l = labels.clone();
        if let Ok(v) = self.values.lock() {
            l.extend(v.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        l
    }

    /// Runs one command (bounded in time and output) and keeps its value.
    async fn run(&self, c: &LabelCommand) {
        let run = tokio::process::Command::new(&c.command[0])
            .args(&c.command[1..])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let value = match tokio::time::timeout(c.period.min(Duration::from_secs(30)), run).await {
            Ok(Ok(out)) if out.status.success() => {
                String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().trim().chars().take(256).collect()
            }
            Ok(Ok(out)) => {
                tracing::warn!(label = %c.name, status = %out.status, "dynamic label command failed; the label is empty");
                String::new()
            }
            Ok(Err(e)) => {
                tracing::warn!(label = %c.name, error = %e, "cannot run the dynamic label command; the label is empty");
                String::new()
            }
            Err(_) => {
                tracing::warn!(label = %c.name, "dynamic label command did not finish in time; the label is empty");
                String::new()
            }
        };
        if let Ok(mut v) = self.values.lock() {
            v.insert(c.name.clone(), value);
        }
    }

    /// Runs every command once now, then each at its period until shutdown (in tasks of their own).
    pub async fn start(self: &Arc<Self>, shutdown: &Shutdown) {
        for c in &self.commands {
            self.run(c).await;
        }
        for i in 0..self.commands.len() {
            let me = self.clone();
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                let period = me.commands[i].period;
                loop {
                    tokio::select! {
                        _ = stop.wait() => return,
                        _ = tokio::time::sleep(period) => {}
                    }
                    let c = me.commands[i].clone();
                    me.run(&c).await;
                }
            });
        }
    }
}
