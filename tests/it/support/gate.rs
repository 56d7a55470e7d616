//! A gate started in-process on an ephemeral port, and the usual Stack (IdP, upstream, gate).

use super::*;

/// A gate running in-process.
pub struct TestGate {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub const RESOURCE_PATH: &str = "/mcp";

impl TestGate {
    /// Starts a gate in front of `upstream` trusting `idp`, with extra settings.
    pub async fn start(idp: &TestIdp, upstream: &TestUpstream, extra: &[(&str, &str)]) -> TestGate {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut vars: HashMap<String, String> = HashMap::new();
        vars.insert("UPSTREAM_URL".into(), upstream.url());
        vars.insert(
            "RESOURCE_URI".into(),
            format!("http://{addr}{RESOURCE_PATH}"),
        );
        vars.insert("AUTHORIZATION_SERVER".into(), idp.issuer.clone());
        vars.insert("JWKS_MIN_REFRESH_INTERVAL".into(), "1s".into());
        vars.insert("JWKS_FETCH_TIMEOUT".into(), "1s".into());
        vars.insert("SHUTDOWN_TIMEOUT".into(), "1s".into());
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        let (config, _) = mcp_gate::Config::from_vars(&vars).expect("valid test config");
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let done = tokio::spawn(mcp_gate::serve(listener, config, async {
            let _ = stop_rx.await;
        }));
        TestGate {
            addr,
            stop: Some(stop_tx),
            done: Some(done),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn resource(&self) -> String {
        self.url(RESOURCE_PATH)
    }

    /// Polls `/readyz` until it answers 200 (or panics after 5 s).
    pub async fn wait_ready(&self) {
        self.wait_ready_at("/readyz").await
    }

    /// Polls a readiness path until it answers 200 (or panics after 5 s).
    pub async fn wait_ready_at(&self, path: &str) {
        for _ in 0..250 {
            if get(&self.url(path), &[]).await.status == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("gate never became ready");
    }

    /// Signals shutdown and waits for `serve` to return.
    pub async fn shutdown(mut self) -> Duration {
        let started = std::time::Instant::now();
        let _ = self.stop.take().unwrap().send(());
        self.done.take().unwrap().await.unwrap().unwrap();
        started.elapsed()
    }
}

impl Drop for TestGate {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An identity provider publishing one RSA key (`k1`), a recording upstream and a ready gate in front
/// of it: the usual arrangement of the integration tests.
pub struct Stack {
    pub idp: TestIdp,
    pub upstream: TestUpstream,
    pub gate: TestGate,
    pub key: TestKey,
}

/// Starts a [`Stack`] with extra gate settings and waits until the gate is ready.
pub async fn stack(extra: &[(&str, &str)]) -> Stack {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let gate = TestGate::start(&idp, &upstream, extra).await;
    let ready_path = extra
        .iter()
        .find(|(k, _)| *k == "READY_PATH")
        .map_or("/readyz", |(_, v)| *v);
    gate.wait_ready_at(ready_path).await;
    Stack {
        idp,
        upstream,
        gate,
        key,
    }
}

impl Stack {
    /// A valid token for this gate, signed with the stack's key.
    pub fn token(&self) -> String {
        self.key
            .token(&claims(&self.idp.issuer, &self.gate.resource()))
    }

    /// A token with the standard claims changed by `change`, signed with the stack's key.
    pub fn token_with(&self, change: impl FnOnce(&mut Value)) -> String {
        let mut c = claims(&self.idp.issuer, &self.gate.resource());
        change(&mut c);
        self.key.token(&c)
    }

    /// `POST` to the MCP endpoint with `token` as the bearer.
    pub async fn post_bearer(&self, token: &str) -> Answer {
        post(
            &self.gate.resource(),
            &[("authorization", &bearer(token))],
            "",
        )
        .await
    }

    /// A valid token for this gate, signed with `key`.
    pub fn token_from(&self, key: &TestKey) -> String {
        key.token(&claims(&self.idp.issuer, &self.gate.resource()))
    }
}
