//! The store against real databases: an embedded SQLite file and the PostgreSQL server on this machine
//! (127.0.0.1:5432; `AIRTRUCT_TEST_POSTGRES` overrides the server URL). Each test gets a database of its own.

use airtruct_store::{SecretRecord, Store, StoreError, StreamStatus, TokenRecord, WorkerState};
use serde_json::json;

fn postgres_server() -> String {
    std::env::var("AIRTRUCT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A fresh database on the PostgreSQL server, dropped when the guard goes.
struct PgDb {
    name: String,
}

impl PgDb {
    async fn new() -> (Self, Store) {
        sqlx::any::install_default_drivers();
        let name = format!("airtruct_test_{}", airtruct_store::new_id());
        let admin = sqlx::AnyPool::connect(&format!("{}/postgres", postgres_server()))
            .await
            .unwrap();
        // The name is made of hex digits by the test itself.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let store = Store::connect(&format!("{}/{name}", postgres_server()))
            .await
            .unwrap();
        (Self { name }, store)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([
                &format!("{}/postgres", postgres_server()),
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

async fn sqlite() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!(
        "sqlite://{}",
        dir.path().join("airtruct.db").display()
    ))
    .await
    .unwrap();
    (dir, store)
}

async fn saves_versions_and_rolls_back(store: &Store) {
    let v1 = json!({"input": {"stdin": {}}, "output": {"stdout": {}}});
    let s = store
        .create_stream("orders", StreamStatus::Paused, &v1, "admin")
        .await
        .unwrap();
    assert_eq!((s.version, s.status), (1, StreamStatus::Paused));
    let dup = store
        .create_stream("orders", StreamStatus::Paused, &v1, "admin")
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::Conflict(_)), "{dup}");

    let v2 = json!({"input": {"stdin": {}}, "output": {"drop": {}}});
    let s2 = store
        .update_stream(&s.id, "orders", StreamStatus::Active, &v2, "admin")
        .await
        .unwrap();
    assert_eq!(
        (s2.version, s2.status, &s2.config),
        (2, StreamStatus::Active, &v2)
    );

    let failed = store
        .set_status(&s.id, StreamStatus::Failed, Some("broker went away"))
        .await
        .unwrap();
    assert_eq!(failed.version, 2, "a status change is not a new version");
    assert_eq!(failed.failure_reason.as_deref(), Some("broker went away"));

    let versions = store.list_versions(&s.id).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(store.get_version(&s.id, 1).await.unwrap().config, v1);

    let rolled = store
        .rollback(&s.id, 1, StreamStatus::Paused, "admin")
        .await
        .unwrap();
    assert_eq!(
        (
            rolled.version,
            &rolled.config,
            rolled.failure_reason.as_deref()
        ),
        (3, &v1, None)
    );
    assert_eq!(store.list_streams().await.unwrap().len(), 1);

    store.delete_stream(&s.id).await.unwrap();
    assert!(matches!(
        store.get_stream(&s.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.list_versions(&s.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_stream(&s.id).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn keeps_users_tokens_and_secrets(store: &Store) {
    assert_eq!(store.count_users().await.unwrap(), 0);
    store
        .create_user("admin", "$argon2id$hash", "admin")
        .await
        .unwrap();
    assert!(matches!(
        store.create_user("admin", "x", "admin").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.get_user("admin").await.unwrap().password_hash,
        "$argon2id$hash"
    );
    // Users have a role and can be disabled; every change is in the audit trail, newest first.
    store.create_user("ann", "h", "viewer").await.unwrap();
    let ann = store
        .update_user("ann", Some("editor"), Some(true), None)
        .await
        .unwrap();
    assert_eq!((ann.role.as_str(), ann.disabled), ("editor", true));
    assert_eq!(ann.password_hash, "h", "what is not given is kept");
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["admin", "ann"]);
    store
        .audit("admin", "user.create", "ann", "viewer")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    store
        .audit("admin", "user.update", "ann", "editor")
        .await
        .unwrap();
    let trail = store.list_audit(10).await.unwrap();
    assert_eq!(
        trail.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(),
        ["user.update", "user.create"]
    );

    let token = TokenRecord {
        token_hash: "h1".into(),
        username: "admin".into(),
        name: "ci".into(),
        created_at: 1,
        expires_at: None,
        role: Some("viewer".into()),
        scopes: "api,mcp".into(),
    };
    store.create_token(&token).await.unwrap();
    assert_eq!(store.find_token("h1").await.unwrap(), Some(token.clone()));
    let expired = TokenRecord {
        token_hash: "h2".into(),
        expires_at: Some(1),
        ..token
    };
    store.create_token(&expired).await.unwrap();
    assert_eq!(store.find_token("h2").await.unwrap(), None);
    assert_eq!(store.find_token("nope").await.unwrap(), None);
    let listed = store.list_tokens("admin").await.unwrap();
    assert_eq!(listed.len(), 1, "expired tokens are not listed");
    assert_eq!(listed[0].name, "ci");
    assert_eq!(store.delete_expired_tokens(10).await.unwrap(), 1);
    store.delete_token("admin", "h1").await.unwrap();
    assert_eq!(store.find_token("h1").await.unwrap(), None);
    assert!(matches!(
        store.delete_token("admin", "h1").await,
        Err(StoreError::NotFound(_))
    ));

    let secret = SecretRecord {
        name: "pg_password".into(),
        nonce: "n".into(),
        ciphertext: "c".into(),
        updated_at: 5,
    };
    assert!(!store.put_secret(&secret).await.unwrap());
    let replaced = SecretRecord {
        ciphertext: "c2".into(),
        ..secret
    };
    assert!(store.put_secret(&replaced).await.unwrap());
    assert_eq!(
        store.get_secret("pg_password").await.unwrap().ciphertext,
        "c2"
    );
    assert_eq!(
        store.list_secrets().await.unwrap(),
        [("pg_password".to_string(), 5)]
    );
    store.delete_secret("pg_password").await.unwrap();
    assert!(matches!(
        store.get_secret("pg_password").await,
        Err(StoreError::NotFound(_))
    ));
}

async fn tracks_workers_leases_and_assignments(store: &Store) {
    let s1 = store
        .create_stream("one", StreamStatus::Active, &json!({}), "admin")
        .await
        .unwrap();
    let s2 = store
        .create_stream("two", StreamStatus::Active, &json!({}), "admin")
        .await
        .unwrap();
    let a = store.register_worker("wa", "host-a").await.unwrap();
    assert_eq!(a.state, WorkerState::Alive);
    store.register_worker("wb", "host-b").await.unwrap();
    store
        .apply_assignments(
            &[],
            &[
                (s1.id.clone(), "wa".into()),
                (s2.id.clone(), "wa".into()),
                (s2.id.clone(), "wb".into()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(store.list_assignments().await.unwrap().len(), 3);

    // wb keeps heartbeating; wa's lease runs out: it is declared dead and loses its streams.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let cutoff = airtruct_store::now_ms();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store.heartbeat_worker("wb", None).await.unwrap();
    assert_eq!(store.expire_workers(cutoff).await.unwrap(), ["wa"]);
    assert_eq!(
        store.get_worker("wa").await.unwrap().state,
        WorkerState::Dead
    );
    let left = store.list_assignments().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0].stream_id.as_str(), left[0].worker_id.as_str()),
        (s2.id.as_str(), "wb")
    );

    // A dead worker that heartbeats again is alive, with nothing assigned.
    assert_eq!(
        store.heartbeat_worker("wa", None).await.unwrap().state,
        WorkerState::Alive
    );
    store
        .set_worker_state("wb", WorkerState::Draining)
        .await
        .unwrap();
    assert_eq!(
        store.heartbeat_worker("wb", None).await.unwrap().state,
        WorkerState::Draining
    );
    // A drained worker that misses its lease and comes back is still draining, not taking streams.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let later = airtruct_store::now_ms();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store.heartbeat_worker("wa", None).await.unwrap();
    assert_eq!(store.expire_workers(later).await.unwrap(), ["wb"]);
    assert_eq!(
        store.heartbeat_worker("wb", None).await.unwrap().state,
        WorkerState::Draining
    );
    assert!(matches!(
        store.heartbeat_worker("nobody", None).await,
        Err(StoreError::NotFound(_))
    ));

    // Deleting a stream deletes its assignments.
    store.delete_stream(&s2.id).await.unwrap();
    assert!(store.list_assignments().await.unwrap().is_empty());
    assert_eq!(store.list_workers().await.unwrap().len(), 2);
}

async fn keeps_processor_versions_and_their_bytes(store: &Store) {
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let info = json!({"name": "upper", "config_schema": "{}"});
    let v1 = store
        .add_processor("upper", "upper-cases", "aa11", &bytes, &info)
        .await
        .unwrap();
    assert_eq!((v1.version, v1.size), (1, 70_000));
    // The same content again is a new version sharing the blob; other content is another.
    let v2 = store
        .add_processor("upper", "again", "aa11", &bytes, &info)
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    let v3 = store
        .add_processor("upper", "new", "bb22", b"\0asm", &info)
        .await
        .unwrap();
    assert_eq!(v3.version, 3);
    store
        .add_processor("other", "", "cc33", b"x", &info)
        .await
        .unwrap();
    assert_eq!(
        store.get_processor("upper", None).await.unwrap().sha256,
        "bb22"
    );
    assert_eq!(
        store
            .get_processor("upper", Some(1))
            .await
            .unwrap()
            .description,
        "upper-cases"
    );
    assert_eq!(
        store.get_processor("upper", Some(1)).await.unwrap().info,
        info
    );
    assert!(matches!(
        store.get_processor("upper", Some(9)).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.get_blob("aa11").await.unwrap(),
        bytes,
        "bytes survive the round trip"
    );
    let all = store.list_processors().await.unwrap();
    let names: Vec<(String, i64)> = all.iter().map(|p| (p.name.clone(), p.version)).collect();
    assert_eq!(
        names,
        [
            ("other".into(), 1),
            ("upper".into(), 3),
            ("upper".into(), 2),
            ("upper".into(), 1)
        ]
    );

    store.delete_processor("upper").await.unwrap();
    assert!(
        matches!(store.get_blob("aa11").await, Err(StoreError::NotFound(_))),
        "unused blobs go"
    );
    assert_eq!(store.get_blob("cc33").await.unwrap(), b"x");
    assert!(matches!(
        store.delete_processor("upper").await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn sqlite_keeps_processor_versions_and_their_bytes() {
    let (_dir, store) = sqlite().await;
    keeps_processor_versions_and_their_bytes(&store).await;
}

#[tokio::test]
async fn postgres_keeps_processor_versions_and_their_bytes() {
    let (_db, store) = PgDb::new().await;
    keeps_processor_versions_and_their_bytes(&store).await;
}

async fn finishes_only_the_active_version_it_was_told(store: &Store) {
    let s = store
        .create_stream("f", StreamStatus::Active, &json!({}), "admin")
        .await
        .unwrap();
    store
        .update_stream(&s.id, "f", StreamStatus::Active, &json!({"v": 2}), "admin")
        .await
        .unwrap();
    // A report of version 1 arrives after version 2 was saved: it changes nothing.
    assert!(
        !store
            .finish_stream(&s.id, 1, StreamStatus::Failed, Some("old"))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_stream(&s.id).await.unwrap().status,
        StreamStatus::Active
    );
    assert!(
        store
            .finish_stream(&s.id, 2, StreamStatus::Failed, Some("boom"))
            .await
            .unwrap()
    );
    let failed = store.get_stream(&s.id).await.unwrap();
    assert_eq!(
        (failed.status, failed.failure_reason.as_deref()),
        (StreamStatus::Failed, Some("boom"))
    );
    // Not active any more: a late completion does not overwrite it.
    assert!(
        !store
            .finish_stream(&s.id, 2, StreamStatus::Completed, None)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn sqlite_finishes_only_the_active_version_it_was_told() {
    let (_dir, store) = sqlite().await;
    finishes_only_the_active_version_it_was_told(&store).await;
}

#[tokio::test]
async fn postgres_finishes_only_the_active_version_it_was_told() {
    let (_db, store) = PgDb::new().await;
    finishes_only_the_active_version_it_was_told(&store).await;
}

#[tokio::test]
async fn sqlite_tracks_workers_leases_and_assignments() {
    let (_dir, store) = sqlite().await;
    tracks_workers_leases_and_assignments(&store).await;
}

#[tokio::test]
async fn postgres_tracks_workers_leases_and_assignments() {
    let (_db, store) = PgDb::new().await;
    tracks_workers_leases_and_assignments(&store).await;
}

#[tokio::test]
async fn sqlite_saves_versions_and_rolls_back() {
    let (_dir, store) = sqlite().await;
    saves_versions_and_rolls_back(&store).await;
}

#[tokio::test]
async fn postgres_saves_versions_and_rolls_back() {
    let (_db, store) = PgDb::new().await;
    saves_versions_and_rolls_back(&store).await;
}

#[tokio::test]
async fn sqlite_keeps_users_tokens_and_secrets() {
    let (_dir, store) = sqlite().await;
    keeps_users_tokens_and_secrets(&store).await;
}

#[tokio::test]
async fn postgres_keeps_users_tokens_and_secrets() {
    let (_db, store) = PgDb::new().await;
    keeps_users_tokens_and_secrets(&store).await;
}

#[tokio::test]
async fn migrations_apply_once_and_data_survives_a_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.create_user("admin", "h", "admin").await.unwrap();
    drop(store);
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(again.count_users().await.unwrap(), 1);
}

#[tokio::test]
async fn refuses_an_unsupported_database_url() {
    let err = Store::connect("mysql://localhost/x").await.err().unwrap();
    assert!(
        err.to_string().contains("unsupported database URL"),
        "{err}"
    );
}

async fn keeps_runs_history_and_the_placement_lease(store: &Store) {
    let s = store
        .create_stream("counted", StreamStatus::Active, &json!({}), "admin")
        .await
        .unwrap();
    store.register_worker("wa", "host-a").await.unwrap();
    let key = |t: i64| (s.id.clone(), t);
    let live = |runs: &[airtruct_store::RunRecord]| -> Vec<(i64, String, bool)> {
        let mut v: Vec<_> = runs
            .iter()
            .map(|r| (r.started_at, r.report.clone(), r.live))
            .collect();
        v.sort();
        v
    };

    // Two runs reported; then only the second: the first ended and keeps its last report.
    store
        .record_runs(
            "wa",
            &[key(1), key(2)],
            &[
                (s.id.clone(), 1, "r1".into()),
                (s.id.clone(), 2, "r2".into()),
            ],
        )
        .await
        .unwrap();
    store
        .record_runs("wa", &[key(2)], &[(s.id.clone(), 2, "r2b".into())])
        .await
        .unwrap();
    let all = store.runs_since(i64::MIN).await.unwrap();
    assert_eq!(
        live(&all),
        [(1, "r1".into(), false), (2, "r2b".into(), true)]
    );
    // Only what changed since a moment is read again.
    let later = airtruct_store::now_ms() + 1;
    assert!(store.runs_since(later).await.unwrap().is_empty());
    // A report of a stream that is gone is dropped.
    store
        .record_runs(
            "wa",
            &[("gone".into(), 5)],
            &[("gone".into(), 5, "x".into())],
        )
        .await
        .unwrap();
    assert_eq!(store.runs_since(i64::MIN).await.unwrap().len(), 2);
    store.end_runs("wa").await.unwrap();
    assert!(
        store
            .runs_since(i64::MIN)
            .await
            .unwrap()
            .iter()
            .all(|r| !r.live)
    );

    // Folding sums what ended before the cut into one row; folding again adds to it.
    let sum = |_: &str, reports: &[String]| reports.join("+");
    let cut = airtruct_store::now_ms() + 1;
    assert_eq!(store.fold_runs(cut, sum).await.unwrap(), 2);
    let all = store.runs_since(i64::MIN).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].worker_id, airtruct_store::FOLDED);
    assert!(
        all[0].report == "r1+r2b" || all[0].report == "r2b+r1",
        "{all:?}"
    );
    store
        .record_runs("wa", &[key(3)], &[(s.id.clone(), 3, "r3".into())])
        .await
        .unwrap();
    store.end_runs("wa").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let cut = airtruct_store::now_ms();
    assert_eq!(store.fold_runs(cut, sum).await.unwrap(), 1);
    let all = store.runs_since(i64::MIN).await.unwrap();
    assert_eq!(all.len(), 1);
    assert!(all[0].report.ends_with("+r3"), "{all:?}");

    // History: samples in order, old ones forgotten, and a deleted stream's rows go with it.
    store
        .add_history(100, &[(s.id.clone(), "a".into())], 0)
        .await
        .unwrap();
    store
        .add_history(
            200,
            &[(s.id.clone(), "b".into()), ("gone".into(), "c".into())],
            0,
        )
        .await
        .unwrap();
    assert_eq!(
        store.history(&s.id).await.unwrap(),
        [(100, "a".to_string()), (200, "b".to_string())]
    );
    store
        .add_history(300, &[(s.id.clone(), "c".into())], 150)
        .await
        .unwrap();
    assert_eq!(
        store.history(&s.id).await.unwrap(),
        [(200, "b".to_string()), (300, "c".to_string())]
    );
    store.delete_stream(&s.id).await.unwrap();
    assert!(store.history(&s.id).await.unwrap().is_empty());
    assert!(store.runs_since(i64::MIN).await.unwrap().is_empty());

    // The lease: one holder until it expires or gives it up.
    assert!(
        store
            .hold_lease("placement", "c1", 1000, 5000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .hold_lease("placement", "c2", 2000, 5000)
            .await
            .unwrap()
    );
    assert!(
        store
            .hold_lease("placement", "c1", 3000, 5000)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .lease_holder("placement", 3000)
            .await
            .unwrap()
            .as_deref(),
        Some("c1")
    );
    // c1 stopped renewing at 3000: at 8001 its lease is over and c2 takes it.
    assert!(
        !store
            .hold_lease("placement", "c2", 7999, 5000)
            .await
            .unwrap()
    );
    assert!(
        store
            .hold_lease("placement", "c2", 8001, 5000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .hold_lease("placement", "c1", 8002, 5000)
            .await
            .unwrap()
    );
    store.release_lease("placement", "c1").await.unwrap();
    assert_eq!(
        store
            .lease_holder("placement", 8002)
            .await
            .unwrap()
            .as_deref(),
        Some("c2")
    );
    store.release_lease("placement", "c2").await.unwrap();
    assert!(
        store
            .hold_lease("placement", "c1", 8003, 5000)
            .await
            .unwrap()
    );

    // Coordinators say they are alive; those not seen lately are left out, and forgotten when pruned.
    store
        .see_coordinator("c1", "http://a:8080", 10, 1000)
        .await
        .unwrap();
    store
        .see_coordinator("c2", "http://b:8080", 20, 1000)
        .await
        .unwrap();
    store
        .see_coordinator("c1", "http://a:8080", 10, 5000)
        .await
        .unwrap();
    let seen = store.list_coordinators(2000).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].id.as_str(), seen[0].last_seen), ("c1", 5000));
    assert_eq!(store.list_coordinators(0).await.unwrap().len(), 2);
    store.prune_coordinators(2000).await.unwrap();
    store.forget_coordinator("c1").await.unwrap();
    assert!(store.list_coordinators(0).await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_keeps_runs_history_and_the_placement_lease() {
    let (_dir, store) = sqlite().await;
    keeps_runs_history_and_the_placement_lease(&store).await;
}

#[tokio::test]
async fn postgres_keeps_runs_history_and_the_placement_lease() {
    let (_db, store) = PgDb::new().await;
    keeps_runs_history_and_the_placement_lease(&store).await;
}
