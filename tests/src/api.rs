//! A thin REST client for tests.

use serde_json::Value;

/// Calls the control plane's HTTP API.
#[derive(Debug, Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    /// Bearer token sent with every request, if any.
    pub token: Option<String>,
}

impl Api {
    pub fn new(base: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap_or_else(|e| panic!("http client: {e}"));
        Self {
            base,
            http,
            token: None,
        }
    }

    /// The same client, authenticated with `token`.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// The same client without credentials.
    pub fn anonymous(&self) -> Self {
        Self {
            token: None,
            ..self.clone()
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GET returning status and JSON body (Null when the body is not JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.http.patch(self.url(path)).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.http.delete(self.url(path))).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.http.put(self.url(path)).json(body)).await
    }

    /// Sends `req` with this client's bearer token.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
            Err(e) => (0, Value::String(e.to_string())),
        }
    }

    /// Creates a job (`POST /api/v1/jobs`, which must answer 201); returns its id.
    pub async fn create_job(&self, body: &Value) -> String {
        let (status, answer) = self.post("/api/v1/jobs", body).await;
        assert_eq!(status, 201, "{answer}");
        answer["data"]["id"].as_str().unwrap_or_default().to_owned()
    }

    /// Waits up to `limit` until job `id` is in `state`; returns the job.
    pub async fn wait_job(&self, id: &str, state: &str, limit: std::time::Duration) -> Value {
        let path = format!("/api/v1/jobs/{id}");
        crate::wait_for(&format!("job {id} {state}"), limit, || {
            let path = path.clone();
            async move {
                let (_, body) = self.get(&path).await;
                (body["data"]["state"] == state).then(|| body["data"].clone())
            }
        })
        .await
    }

    /// The `/metrics` text (empty if the server does not answer).
    pub async fn metrics_text(&self) -> String {
        match self.http.get(self.url("/metrics")).send().await {
            Ok(resp) => resp.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The value of one series in `/metrics` (`name` with its labels, e.g.
    /// `luach_mqtt_messages_in_total{kind="hello"}`), or None when absent or unreachable.
    pub async fn counter(&self, series: &str) -> Option<f64> {
        let text = self.metrics_text().await;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Counts devices with `status` (following every page), or None if the server is down.
    pub async fn count(&self, status: &str) -> Option<u64> {
        let (code, body) = self.get(&format!("/api/v1/devices?status={status}&limit=1")).await;
        (code == 200).then(|| body["data"]["total"].as_u64()).flatten()
    }
}
