//! Contract versions and capabilities: a 0.1.0 component still loads and runs; a 0.2.0 one says what it asks for;
//! its calls reach the stream's resources only as its grants allow, and every refusal is a value the guest
//! handles, never a trap; a wait on a rate limit does not count against the call's time limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use airtruct_builtins::{RATE_LIMIT, fixtures};
use airtruct_engine::capabilities::{
    CacheAnswer, CacheOp, HttpRequest, HttpResponse, SqlRows, SqlValue,
};
use airtruct_engine::{
    Capability, Engine, EngineConfig, Grants, HostAccess, HostError, Limits, Message, Resources,
};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(EngineConfig {
            pool_instances: 16,
            ..EngineConfig::default()
        })
        .unwrap()
    })
}

fn msg(payload: &str) -> Message {
    Message {
        payload: payload.as_bytes().to_vec(),
        metadata: Vec::new(),
        error: None,
    }
}

fn seen(m: &Message) -> Option<String> {
    airtruct_codec::Metadata::iter_bytes(&m.metadata)
        .find(|(k, _)| *k == "seen")
        .map(|(_, v)| v.to_string())
}

/// Resources in memory: one cache, and a rate limit whose every take waits `wait`.
#[derive(Default)]
struct InMemory {
    cache: Mutex<HashMap<String, Vec<u8>>>,
    wait: Duration,
}

impl Resources for InMemory {
    fn http(
        &self,
        _: &str,
        r: Vec<HttpRequest>,
        _: Instant,
    ) -> Vec<Result<HttpResponse, HostError>> {
        r.iter()
            .map(|_| Err(HostError::Failed("no http here".into())))
            .collect()
    }

    fn sql(&self, _: &str, _: String, _: Vec<SqlValue>, _: Instant) -> Result<SqlRows, HostError> {
        Err(HostError::Failed("no sql here".into()))
    }

    fn cache(&self, _: &str, op: CacheOp, _: Instant) -> Result<CacheAnswer, HostError> {
        let mut c = self.cache.lock().unwrap();
        Ok(match op {
            CacheOp::Get(k) => CacheAnswer::Value(c.get(&k).cloned()),
            CacheOp::Set { key, value, .. } => {
                c.insert(key, value);
                CacheAnswer::Done
            }
            CacheOp::Add { key, value, .. } => {
                CacheAnswer::Added(c.insert(key.clone(), value).is_none())
            }
            CacheOp::Delete(k) => {
                c.remove(&k);
                CacheAnswer::Done
            }
        })
    }

    fn rate_limit(&self, _: &str, _: u32) -> Result<(), HostError> {
        std::thread::sleep(self.wait);
        Ok(())
    }
}

fn access(resources: Arc<dyn Resources>, grants: &[(Capability, &str)]) -> HostAccess {
    let mut g = Grants::default();
    for (c, name) in grants {
        g.grant(*c, name);
    }
    HostAccess {
        resources,
        grants: Arc::new(g),
    }
}

#[test]
fn a_0_1_0_component_still_loads_and_runs() {
    let v1 = engine().load(fixtures::V1).unwrap();
    assert_eq!(v1.contract(), "0.1.0");
    assert!(v1.capabilities().is_empty());
    assert_eq!(v1.info().name, "fixture-v1");
    let mut inst = engine().instantiate(&v1, "{}", Limits::default()).unwrap();
    assert_eq!(inst.process(&[msg("abc")]).unwrap(), vec![msg("ABC")]);
}

#[test]
fn a_0_2_0_component_says_what_it_asks_for_and_a_call_it_was_not_granted_fails_its_message_not_the_instance()
 {
    let seen_c = engine().load(fixtures::SEEN).unwrap();
    assert_eq!(seen_c.contract(), "0.2.0");
    assert_eq!(seen_c.capabilities(), &[Capability::Cache]);
    // The built-ins are 0.2.0 components too; those that call out say so.
    let mapping = engine().load(airtruct_builtins::MAPPING.wasm).unwrap();
    assert_eq!(mapping.contract(), "0.2.0");
    assert!(mapping.capabilities().is_empty());

    // No access at all.
    let mut bare = engine()
        .instantiate(&seen_c, r#"{"cache":"mem"}"#, Limits::default())
        .unwrap();
    let out = bare.process(&[msg("a")]).unwrap();
    let error = out[0].error.as_deref().unwrap();
    assert!(
        error.contains("not granted") && error.contains("\"mem\""),
        "{error}"
    );
    assert_eq!(bare.restarts(), 0);

    // Granted a cache of another name: still refused, by name.
    let resources: Arc<dyn Resources> = Arc::new(InMemory::default());
    let mut other = engine()
        .instantiate_with(
            &seen_c,
            r#"{"cache":"mem"}"#,
            Limits::default(),
            Some(access(resources.clone(), &[(Capability::Cache, "other")])),
        )
        .unwrap();
    let out = other.process(&[msg("a")]).unwrap();
    assert!(out[0].error.as_deref().unwrap().contains("not granted"));

    // Granted: the calls reach the resources.
    let mut granted = engine()
        .instantiate_with(
            &seen_c,
            r#"{"cache":"mem"}"#,
            Limits::default(),
            Some(access(resources.clone(), &[(Capability::Cache, "mem")])),
        )
        .unwrap();
    let out = granted.process(&[msg("a"), msg("b"), msg("a")]).unwrap();
    let marks: Vec<Option<String>> = out.iter().map(seen).collect();
    assert_eq!(
        marks,
        vec![
            Some("false".into()),
            Some("false".into()),
            Some("true".into())
        ]
    );
}

#[test]
fn a_wait_on_a_rate_limit_is_not_counted_against_the_time_limit_but_work_still_is() {
    let component = engine().load(RATE_LIMIT.wasm).unwrap();
    let limits = Limits {
        timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let resources: Arc<dyn Resources> = Arc::new(InMemory {
        wait: Duration::from_millis(120),
        ..InMemory::default()
    });
    let mut inst = engine()
        .instantiate_with(
            &component,
            r#"{"resource":"slow"}"#,
            limits,
            Some(access(resources, &[(Capability::RateLimit, "slow")])),
        )
        .unwrap();
    // Four waits of 120 ms: twice the time limit, all of it waiting.
    let out = inst
        .process(&[msg("1"), msg("2"), msg("3"), msg("4")])
        .unwrap();
    assert_eq!(out.len(), 4);
    assert!(out.iter().all(|m| m.error.is_none()), "{out:?}");
    assert_eq!(inst.restarts(), 0);
    // A loop still hits its limit.
    let looping = engine().load(fixtures::LOOP).unwrap();
    let mut inst = engine().instantiate(&looping, "{}", limits).unwrap();
    assert!(inst.process(&[msg("boom")]).is_err());
}
