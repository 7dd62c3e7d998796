//! The worker protocol as the coordinator answers it: register, heartbeat (a long poll for assignment changes)
//! and leave, and the assignments a worker is sent with their sealed secrets and uploaded components.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use airtruct_store::{StoreError, WorkerState, new_id};

use super::Coordinator;
use crate::protocol::{
    Assignment, ComponentRef, HeartbeatRequest, HeartbeatResponse, RegisterResponse, ReplicaState,
    SealedSecret,
};

/// Why a worker-protocol call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("unknown worker \"{0}\": register again")]
    UnknownWorker(String),
    #[error("this credential belongs to worker \"{0}\", not to \"{1}\"")]
    NotYours(String, String),
    #[error("ingest_url {0}")]
    BadIngestUrl(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Coordinator {
    pub async fn register(&self, name: &str) -> Result<RegisterResponse, ProtocolError> {
        let id = new_id();
        self.store.register_worker(&id, name).await?;
        tracing::info!(worker = %id, name, "worker registered");
        self.changed();
        Ok(RegisterResponse {
            credential: self.worker_credential(&id),
            forward_token: self.forward_token(&id),
            worker_id: id,
            lease_ms: self.timing.lease.as_millis() as u64,
        })
    }

    /// Renews the worker's lease, records its report, and answers with its assignments, waiting up to
    /// `wait_ms` for a change when they match what it runs. `peer` is the address the call came from (`None`
    /// for a worker in this process): an `ingest_url` must lead back to it.
    pub async fn heartbeat(
        &self,
        req: HeartbeatRequest,
        peer: Option<IpAddr>,
    ) -> Result<HeartbeatResponse, ProtocolError> {
        if let Some(url) = &req.ingest_url {
            let known = self
                .ingest_urls
                .lock()
                .expect("ingest lock")
                .get(&req.worker_id)
                == Some(url);
            if !known {
                check_ingest_url(url, peer)
                    .await
                    .map_err(ProtocolError::BadIngestUrl)?;
            }
        }
        let before = self.store.get_worker(&req.worker_id).await;
        let worker = match self
            .store
            .heartbeat_worker(&req.worker_id, req.ingest_url.as_deref())
            .await
        {
            Err(StoreError::NotFound(_)) => {
                return Err(ProtocolError::UnknownWorker(req.worker_id));
            }
            other => other?,
        };
        if before.is_ok_and(|b| b.state == WorkerState::Dead) {
            tracing::info!(worker = %worker.id, "worker is back after its lease expired: it owns nothing now");
            self.changed();
        }
        let running: BTreeSet<(String, i64, i64)> = req
            .streams
            .iter()
            .filter(|r| r.state != ReplicaState::Stopping)
            .map(|r| (r.stream_id.clone(), r.version, r.assigned_at))
            .collect();
        {
            let mut urls = self.ingest_urls.lock().expect("ingest lock");
            match &req.ingest_url {
                Some(url) => urls.insert(req.worker_id.clone(), url.clone()),
                None => urls.remove(&req.worker_id),
            };
        }
        self.record_report(&req.worker_id, req.streams).await?;

        // Subscribe before reading, so a change made in between is not missed; wake on every change but answer
        // only when this worker's assignments differ from what it runs, or when the wait is over.
        let mut changes = self.changes.subscribe();
        // Never hold a heartbeat for more than a third of the lease, so it cannot expire while waiting.
        let wait = Duration::from_millis(req.wait_ms).min(self.timing.lease / 3);
        let deadline = tokio::time::Instant::now() + wait;
        let assignments = loop {
            changes.borrow_and_update();
            let assignments = self.assignments_for(&req.worker_id).await?;
            let wanted: BTreeSet<(String, i64, i64)> = assignments
                .iter()
                .map(|a| (a.stream_id.clone(), a.version, a.assigned_at))
                .collect();
            if wanted != running {
                break assignments;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                _ => break assignments,
            }
        };
        Ok(HeartbeatResponse {
            assignments,
            lease_ms: self.timing.lease.as_millis() as u64,
        })
    }

    /// A worker shut down after stopping its streams: it owns nothing from now on.
    pub async fn leave(&self, worker: &str) -> Result<(), ProtocolError> {
        match self.store.set_worker_state(worker, WorkerState::Dead).await {
            Err(StoreError::NotFound(_)) => {
                return Err(ProtocolError::UnknownWorker(worker.into()));
            }
            other => other?,
        };
        // Expire it now: its assignments go and its last counters are kept.
        self.store
            .apply_assignments(
                &self
                    .store
                    .list_assignments()
                    .await?
                    .into_iter()
                    .filter(|a| a.worker_id == worker)
                    .map(|a| (a.stream_id, a.worker_id))
                    .collect::<Vec<_>>(),
                &[],
            )
            .await?;
        self.store.end_runs(worker).await?;
        self.end_runs(worker);
        tracing::info!(worker, "worker left");
        self.changed();
        Ok(())
    }

    /// The streams placed on a worker, with their configs and sealed secrets.
    pub async fn assignments_for(&self, worker: &str) -> Result<Vec<Assignment>, StoreError> {
        let mut out = Vec::new();
        for a in self.store.list_assignments().await? {
            if a.worker_id != worker {
                continue;
            }
            let stream = match self.store.get_stream(&a.stream_id).await {
                Ok(s) => s,
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let mut secrets = Vec::new();
            for (name, _) in airtruct_model::secret_refs(&stream.config) {
                match self.store.get_secret(&name).await {
                    Ok(s) => secrets.push(SealedSecret {
                        name: s.name,
                        nonce: s.nonce,
                        ciphertext: s.ciphertext,
                    }),
                    Err(StoreError::NotFound(_)) => {} // the worker reports it missing
                    Err(e) => return Err(e),
                }
            }
            let mut components = Vec::new();
            for r in airtruct_runtime::processors::uploaded_refs(
                airtruct_connectors::registry(),
                &stream.config,
            ) {
                match self.store.get_processor(&r.name, r.version).await {
                    Ok(p) => components.push(ComponentRef {
                        name: p.name,
                        version: p.version,
                        sha256: p.sha256,
                    }),
                    Err(StoreError::NotFound(_)) => {} // the worker reports it missing
                    Err(e) => return Err(e),
                }
            }
            out.push(Assignment {
                stream_id: stream.id,
                name: stream.name,
                version: stream.version,
                assigned_at: a.assigned_at,
                config: stream.config,
                secrets,
                components,
                policy: Some((*self.policy).clone()),
            });
        }
        Ok(out)
    }
}

/// Where a worker says it takes forwarded ingest requests: a plain `http(s)://host:port` base (no credentials,
/// path, query or fragment) whose host is the worker itself, the address its heartbeat came from, so that no
/// worker can point the coordinator's forwarding at another machine.
pub async fn check_ingest_url(url: &str, peer: Option<IpAddr>) -> Result<(), String> {
    let bad = |why: &str| format!("\"{url}\" is refused: {why}");
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("use http:// or https://"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("it must not carry credentials"));
    }
    if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() || parsed.fragment().is_some()
    {
        return Err(bad("give only scheme, host and port"));
    }
    let Some(host) = parsed.host_str() else {
        return Err(bad("it has no host"));
    };
    let Some(peer) = peer else {
        return Ok(());
    };
    let port = parsed.port_or_known_default().unwrap_or(80);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::lookup_host((host, port)),
        )
        .await
        .map_err(|_| bad("its host name did not resolve in time"))?
        .map_err(|e| bad(&format!("its host name does not resolve: {e}")))?
        .map(|a| a.ip())
        .collect(),
    };
    let same = |ip: &IpAddr| {
        ip.to_canonical() == peer.to_canonical() || (ip.is_loopback() && peer.is_loopback())
    };
    if addrs.iter().any(same) {
        Ok(())
    } else {
        Err(bad(&format!(
            "its host is not this worker (the heartbeat came from {peer})"
        )))
    }
}
