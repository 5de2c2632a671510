//! The device's persistent id and where to find the broker.

use std::path::Path;

use anyhow::Context;
use luach_schemas::DeviceId;

/// Reads the device id from `state_dir/device-id` (an error when there is none yet).
pub fn load(state_dir: &Path) -> anyhow::Result<DeviceId> {
    let file = state_dir.join("device-id");
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("reading {} (has this screen run yet?)", file.display()))?;
    DeviceId::parse(text.trim()).with_context(|| format!("{} holds an invalid device id", file.display()))
}

/// Reads the device id from `state_dir/device-id`, creating a random one on first start.
pub fn load_or_create(state_dir: &Path) -> anyhow::Result<DeviceId> {
    let file = state_dir.join("device-id");
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            DeviceId::parse(text.trim()).with_context(|| format!("{} holds an invalid device id", file.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(state_dir).with_context(|| format!("creating {}", state_dir.display()))?;
            let id = DeviceId::from_random_bytes(rand::random());
            // Write then rename so a crash never leaves a half-written identity.
            let tmp = state_dir.join("device-id.tmp");
            std::fs::write(&tmp, id.as_str()).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &file).with_context(|| format!("writing {}", file.display()))?;
            Ok(id)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
    }
}

/// Splits `host:port` (IPv6 in brackets).
pub fn parse_host_port(s: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = s.rsplit_once(':').with_context(|| format!("`{s}` is not HOST:PORT"))?;
    let port: u16 = port.parse().with_context(|| format!("`{port}` is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    anyhow::ensure!(!host.is_empty(), "`{s}` has no host");
    Ok((host.to_owned(), port))
}

/// Where the control plane's broker listens, as `/api/v1/agent/bootstrap` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddresses {
    /// The plain (development) listener, if it runs.
    pub plain: Option<(String, u16)>,
    /// The mutual-TLS listener, if it runs.
    pub tls: Option<(String, u16)>,
}

/// Asks the control plane at `server` (http://host:port) where its MQTT broker is.
pub async fn discover(server: &str) -> anyhow::Result<BrokerAddresses> {
    #[derive(serde::Deserialize)]
    struct Body {
        data: Data,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        mqtt: Option<String>,
        #[serde(default)]
        mqtt_tls: Option<String>,
    }
    let url = format!("{}/api/v1/agent/bootstrap", server.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .context("building http client")?;
    let body: Body = client
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("asking {url} for the broker address"))?
        .json()
        .await
        .with_context(|| format!("reading {url}"))?;
    Ok(BrokerAddresses {
        plain: body.data.mqtt.as_deref().map(parse_host_port).transpose()?,
        tls: body.data.mqtt_tls.as_deref().map(parse_host_port).transpose()?,
    })
}

/// The address this machine uses to reach `host` (no packet is sent).
pub fn local_ip_towards(host: &str, port: u16) -> Option<String> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect((host, port)).ok()?;
    socket.local_addr().ok().map(|a| a.ip().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_persists() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let a = load_or_create(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let b = load_or_create(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a, b);
        std::fs::write(dir.path().join("device-id"), "Not/Valid").unwrap_or_else(|e| panic!("{e}"));
        assert!(load_or_create(dir.path()).is_err());
    }

    #[test]
    fn host_port() {
        assert_eq!(parse_host_port("127.0.0.1:1883").ok(), Some(("127.0.0.1".into(), 1883)));
        assert_eq!(parse_host_port("[::1]:1883").ok(), Some(("::1".into(), 1883)));
        assert!(parse_host_port("nohost").is_err());
        assert!(parse_host_port(":1883").is_err());
        assert!(parse_host_port("h:99999").is_err());
    }
}
