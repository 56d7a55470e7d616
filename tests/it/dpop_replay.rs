//! DPoP replays across replicas (`DPOP_REPLAY_STORE=redis`): two gates sharing a real redis-server
//! refuse a proof the other one accepted; without the shared store they do not (the per-replica
//! limit README states); with Redis down, `DPOP_REPLAY_REDIS_FAILURE` decides.

use serde_json::json;

use crate::dpop::{challenges, Client};
use crate::support::*;

/// One resource URI for both gates, so a proof's `htu` and the token's `aud` are good at either.
const SHARED_RESOURCE: &str = "http://127.0.0.1:9/mcp";

struct Replicas {
    upstream: TestUpstream,
    gates: [TestGate; 2],
    token: String,
    client: Client,
    _idp: TestIdp,
}

async fn replicas(extra: &[(&str, &str)]) -> Replicas {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let mut settings = vec![("RESOURCE_URI", SHARED_RESOURCE)];
    settings.extend_from_slice(extra);
    let gates = [
        TestGate::start(&idp, &upstream, &settings).await,
        TestGate::start(&idp, &upstream, &settings).await,
    ];
    for gate in &gates {
        gate.wait_ready().await;
    }
    let client = Client::new();
    let mut c = claims(&idp.issuer, SHARED_RESOURCE);
    c["cnf"] = json!({ "jkt": client.jkt });
    Replicas {
        token: key.token(&c),
        upstream,
        gates,
        client,
        _idp: idp,
    }
}

impl Replicas {
    fn proof(&self) -> String {
        self.client.proof(SHARED_RESOURCE, &self.token)
    }

    async fn send(&self, gate: usize, proof: &str) -> Answer {
        let auth = format!("DPoP {}", self.token);
        let headers = [("authorization", auth.as_str()), ("dpop", proof)];
        post(&self.gates[gate].resource(), &headers, "{}").await
    }
}

fn shared(redis: &RedisServer, on_failure: &'static str) -> Vec<(&'static str, String)> {
    vec![
        ("DPOP_REPLAY_STORE", "redis".to_string()),
        ("RATE_LIMIT_REDIS_URL", redis.url()),
        ("DPOP_REPLAY_REDIS_FAILURE", on_failure.to_string()),
        // Generous on a loaded two-core machine: these tests count on Redis deciding while it is up.
        ("RATE_LIMIT_REDIS_TIMEOUT", "2s".to_string()),
    ]
}

fn borrowed<'a>(settings: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    settings.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn with_the_shared_store_a_proof_used_at_one_replica_is_refused_at_the_other() {
    let redis = RedisServer::start().await;
    let settings = shared(&redis, "local");
    let r = replicas(&borrowed(&settings)).await;

    let proof = r.proof();
    assert_eq!(r.send(0, &proof).await.status, 200);
    assert_eq!(redis.keys().await, 1, "the proof is remembered in Redis");
    let replay = r.send(1, &proof).await;
    assert_eq!(replay.status, 401, "{:?}", replay.body);
    assert_eq!(replay.json()["error"], "invalid_dpop_proof");
    assert!(
        challenges(&replay)[0].contains("error=\"invalid_dpop_proof\""),
        "{:?}",
        challenges(&replay)
    );
    assert_eq!(
        r.upstream.count(),
        1,
        "the replay never reached the upstream"
    );
    // A fresh proof is good at either replica.
    assert_eq!(r.send(1, &r.proof()).await.status, 200);
    assert_eq!(r.upstream.count(), 2);
}

#[tokio::test]
async fn without_the_shared_store_each_replica_remembers_only_its_own_proofs() {
    let r = replicas(&[]).await;
    let proof = r.proof();
    assert_eq!(r.send(0, &proof).await.status, 200);
    assert_eq!(r.send(0, &proof).await.status, 401, "same replica: refused");
    assert_eq!(
        r.send(1, &proof).await.status,
        200,
        "the other replica cannot know (README: DPoP, replicas)"
    );
}

#[tokio::test]
async fn with_redis_down_local_keeps_the_per_replica_check_and_closed_refuses_with_503() {
    let mut redis = RedisServer::start().await;
    let local = shared(&redis, "local");
    let closed = shared(&redis, "closed");
    let open_gates = replicas(&borrowed(&local)).await;
    let closed_gates = replicas(&borrowed(&closed)).await;
    assert_eq!(open_gates.send(0, &open_gates.proof()).await.status, 200);
    assert_eq!(
        closed_gates.send(0, &closed_gates.proof()).await.status,
        200
    );

    redis.kill();
    let proof = open_gates.proof();
    assert_eq!(
        open_gates.send(0, &proof).await.status,
        200,
        "local fallback"
    );
    assert_eq!(
        open_gates.send(0, &proof).await.status,
        401,
        "the replica still refuses its own replays"
    );
    let before = closed_gates.upstream.count();
    let refused = closed_gates.send(0, &closed_gates.proof()).await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(closed_gates.upstream.count(), before, "nothing forwarded");

    // Back: shared again, and closed lets proofs through again.
    redis.restart().await;
    let mut recovered = false;
    for _ in 0..100 {
        if closed_gates.send(0, &closed_gates.proof()).await.status == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(recovered, "the gate reconnects to a restarted Redis");
    let mut shared_again = false;
    for _ in 0..100 {
        let proof = open_gates.proof();
        assert_eq!(open_gates.send(0, &proof).await.status, 200);
        if open_gates.send(1, &proof).await.status == 401 {
            shared_again = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(shared_again, "replays are refused across replicas again");
}
