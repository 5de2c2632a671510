//! The deployment files under `deploy/`, read by the tools operators use on them:
//! `docker-compose config` for the compose file, the chart rendered with Go's text/template
//! (Helm's engine, `tools/chart-render`) and validated against Kubernetes' API schema,
//! `systemd-analyze verify` and `security` for the units, and `luach-server print-config`
//! for every configuration they hand the server, so a file that the server would refuse at
//! start-up fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use luach_tests::{Must, bin_path, python};
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().must().to_owned()
}

fn run(cmd: &mut Command, what: &str) -> std::process::Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{what} could not start ({e}); scripts/test.sh installs it"))
}

/// `tools/deploy_check.py` with `args`: its JSON on success, its message on failure.
fn deploy_check(args: &[&str], env: &[(&str, &str)]) -> Result<Value, String> {
    let mut cmd = Command::new(python());
    cmd.arg(root().join("tools/deploy_check.py"))
        .args(args)
        .current_dir(root());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(&mut cmd, "python with the test packages");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).must())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `luach-server print-config` with `config` and `env`: the configuration the server would
/// run with, or why it refuses it.
fn server_config(config: &Path, env: &[(String, String)]) -> Result<toml::Table, String> {
    let mut cmd = Command::new(bin_path("luach-server"));
    cmd.arg("--config").arg(config).arg("print-config");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(&mut cmd, "luach-server");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(toml::from_str(&String::from_utf8_lossy(&out.stdout)).must())
}

fn get<'a>(t: &'a toml::Table, path: &str) -> &'a toml::Value {
    let mut parts = path.split('.');
    let mut v = t
        .get(parts.next().must())
        .unwrap_or_else(|| panic!("{path} missing in {t}"));
    for p in parts {
        v = v.get(p).unwrap_or_else(|| panic!("{path} missing in {t}"));
    }
    v
}

#[test]
fn the_compose_file_runs_two_replicas_on_shared_services_with_a_config_the_server_accepts() {
    let file = root().join("deploy/compose/compose.yaml");
    let file = file.to_str().must();
    let c = deploy_check(&["compose", file], &[("LUACH_PUBLIC_HOST", "signage.example.org")]).must();
    let services = c["services"].as_object().must();
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["init", "mongo", "mosquitto", "redis", "server-a", "server-b"].into(),
        "{c}"
    );

    // MongoDB runs as a replica set, which the store URL names.
    let mongo_cmd = services["mongo"]["command"].to_string();
    assert!(mongo_cmd.contains("\"--replSet\",\"rs0\""), "{mongo_cmd}");

    // Both replicas: the same image built from the repository's Dockerfile, the shared data
    // volume, the configuration file, and a configuration the real server accepts.
    let config_file = root().join("deploy/compose/luach-server.toml");
    for name in ["server-a", "server-b"] {
        let s = &services[name];
        assert_eq!(s["build"]["dockerfile"], "deploy/docker/Dockerfile", "{name}");
        assert_eq!(s["image"], services["server-a"]["image"], "{name}");
        let volumes = s["volumes"].to_string();
        assert!(volumes.contains("luach-data:/var/lib/luach:rw"), "{name}: {volumes}");
        assert!(
            volumes.contains("luach-server.toml:/etc/luach/luach-server.toml:ro"),
            "{name}: {volumes}"
        );
        let env: Vec<(String, String)> = s["environment"]
            .as_object()
            .must()
            .iter()
            .filter(|(k, _)| k.as_str() != "LUACH_CONFIG")
            .map(|(k, v)| (k.clone(), v.as_str().must().to_owned()))
            .collect();
        assert_eq!(
            s["environment"]["LUACH_CONFIG"], "/etc/luach/luach-server.toml",
            "{name}"
        );
        let config = server_config(&config_file, &env).unwrap_or_else(|e| panic!("{name}: the server refuses: {e}"));
        assert_eq!(get(&config, "mqtt.mode").as_str(), Some("external"), "{config}");
        assert_eq!(get(&config, "mqtt.external.host").as_str(), Some("mosquitto"));
        assert_eq!(
            get(&config, "http.public_mqtt_tls").as_str(),
            Some("signage.example.org:8883")
        );
        let names = get(&config, "mqtt.tls_hostnames").to_string();
        assert!(
            names.contains("\"mosquitto\"") && names.contains("\"signage.example.org\""),
            "{names}"
        );
        // Secrets are redacted by print-config; the URLs point at the compose services.
        assert!(get(&config, "redis").as_str().must().contains("redis"), "{config}");
        assert_eq!(
            get(&config, "mqtt.external.config_dir").as_str(),
            Some("/var/lib/luach/mosquitto")
        );
    }
    let store_url = std::fs::read_to_string(&config_file).must();
    assert!(
        store_url.contains("mongodb://mongo:27017/?replicaSet=rs0"),
        "{store_url}"
    );

    // Start order: the one-shot init writes keys and broker files before anything reads
    // them, and the second replica waits for the first to be healthy.
    assert_eq!(services["init"]["command"][0], "broker-config");
    assert_eq!(
        services["mosquitto"]["depends_on"]["init"]["condition"],
        "service_completed_successfully"
    );
    assert_eq!(
        services["server-a"]["depends_on"]["init"]["condition"],
        "service_completed_successfully"
    );
    assert_eq!(
        services["server-b"]["depends_on"]["server-a"]["condition"],
        "service_healthy"
    );
    // The broker reads the server's files as the server's user, read-only.
    assert_eq!(services["mosquitto"]["user"], "10001:10001");
    assert!(
        services["mosquitto"]["volumes"]
            .to_string()
            .contains("luach-data:/var/lib/luach:ro")
    );

    // The Dockerfile's sources exist and its user is the one the compose file runs Mosquitto as.
    let dockerfile = std::fs::read_to_string(root().join("deploy/docker/Dockerfile")).must();
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        for source in line
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .split_last()
            .must()
            .1
        {
            assert!(root().join(source).exists(), "Dockerfile copies missing {source}");
        }
    }
    assert!(dockerfile.contains("--uid 10001") && dockerfile.contains("USER 10001:10001"));
    assert!(dockerfile.contains("-p luach-control-plane --bin luach-server"));
}

#[test]
fn a_compose_file_with_a_mistake_is_refused_by_docker_compose() {
    // The check itself can fail: a service depending on one that does not exist.
    let dir = tempfile::tempdir().must();
    let text = std::fs::read_to_string(root().join("deploy/compose/compose.yaml")).must();
    let broken = text.replace(
        "      server-a:\n        condition: service_healthy",
        "      server-c:\n        condition: service_healthy",
    );
    assert_ne!(broken, text);
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, broken).must();
    let err = deploy_check(&["compose", file.to_str().must()], &[]).expect_err("accepted");
    assert!(err.contains("server-c"), "{err}");
}

/// Renders the chart with `values` (YAML) on top of its defaults.
fn chart(values: &str) -> Result<Value, String> {
    let dir = tempfile::tempdir().must();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, values).must();
    let chart = root().join("deploy/helm/luach");
    deploy_check(&["chart", chart.to_str().must(), "-f", file.to_str().must()], &[])
}

const VALUES: &str = "
secrets: {existingSecret: luach-secrets}
mqtt: {publicHost: mqtt.example.org, external: {host: mosquitto.signage.svc}}
";

fn objects<'a>(rendered: &'a Value, kind: &str) -> Vec<&'a Value> {
    rendered["documents"]
        .as_array()
        .must()
        .iter()
        .map(|d| &d["object"])
        .filter(|o| o["kind"] == kind)
        .collect()
}

fn one<'a>(rendered: &'a Value, kind: &str) -> &'a Value {
    let found = objects(rendered, kind);
    assert_eq!(found.len(), 1, "{kind}: {found:?}");
    found[0]
}

#[test]
fn the_chart_renders_valid_kubernetes_objects_that_fit_together() {
    let r = chart(VALUES).must();
    let kinds: BTreeSet<&str> = r["documents"]
        .as_array()
        .must()
        .iter()
        .map(|d| d["object"]["kind"].as_str().must())
        .collect();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "HorizontalPodAutoscaler",
            "PersistentVolumeClaim",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount",
            "StatefulSet"
        ]
        .into(),
        "{r}"
    );
    // Every object was validated against Kubernetes' own schema (strict: unknown fields fail).
    for d in r["documents"].as_array().must() {
        assert_eq!(d["schema"], "kubernetes", "{d}");
    }

    let set = one(&r, "StatefulSet");
    let name = set["metadata"]["name"].as_str().must();
    assert_eq!(set["spec"]["podManagementPolicy"], "OrderedReady");
    let pod_labels = &set["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&set["spec"]["selector"]["matchLabels"], pod_labels);
    // The services, the budget and the autoscaler all point at these pods.
    for svc in objects(&r, "Service") {
        assert_eq!(&svc["spec"]["selector"], pod_labels, "{svc}");
    }
    assert_eq!(
        &one(&r, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        pod_labels
    );
    let hpa = one(&r, "HorizontalPodAutoscaler");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"],
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name})
    );
    assert!(
        set["spec"].get("replicas").is_none(),
        "the autoscaler owns the replica count"
    );
    assert!(
        objects(&r, "Service")
            .iter()
            .any(|s| s["metadata"]["name"] == set["spec"]["serviceName"] && s["spec"]["clusterIP"] == "None")
    );

    let pod = &set["spec"]["template"]["spec"];
    let server = &pod["containers"][0];
    assert_eq!(server["args"], json!(["serve"]));
    assert_eq!(
        server["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "http"})
    );
    assert_eq!(
        server["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "http"})
    );
    assert_eq!(server["ports"][0]["name"], "http");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(server["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(pod["automountServiceAccountToken"], false);
    // Secrets only by reference, all to the named Secret.
    let init = &pod["initContainers"][0];
    for container in [server, init] {
        for var in container["env"].as_array().must() {
            let var_name = var["name"].as_str().must();
            if [
                "LUACH_STORE__URL",
                "LUACH_REDIS",
                "LUACH_AUTH__JWT_SECRET",
                "LUACH_AUDIT__CHAIN_KEY",
            ]
            .contains(&var_name)
            {
                assert!(var.get("value").is_none(), "{var}");
                assert_eq!(var["valueFrom"]["secretKeyRef"]["name"], "luach-secrets", "{var}");
            }
        }
    }
    // The init container writes the broker's files where the server rewrites them.
    assert_eq!(init["args"][0], "broker-config");
    assert_eq!(init["args"][3], "/var/lib/luach/mosquitto");
    // The claim is shared by every replica and survives an uninstall.
    let pvc = one(&r, "PersistentVolumeClaim");
    assert_eq!(pvc["spec"]["accessModes"], json!(["ReadWriteMany"]));
    assert_eq!(pvc["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    assert!(
        pod["volumes"]
            .to_string()
            .contains(pvc["metadata"]["name"].as_str().must())
    );

    // The rendered configuration is one the server accepts, with the secrets from the env.
    let dir = tempfile::tempdir().must();
    let config_file = dir.path().join("luach-server.toml");
    let cm = one(&r, "ConfigMap");
    std::fs::write(&config_file, cm["data"]["luach-server.toml"].as_str().must()).must();
    let env: Vec<(String, String)> = [
        ("LUACH_STORE__URL", "mongodb://db.signage.svc/?replicaSet=rs0"),
        ("LUACH_REDIS", "redis://redis.signage.svc:6379"),
        ("LUACH_AUTH__JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("LUACH_AUDIT__CHAIN_KEY", "fedcba9876543210fedcba9876543210"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let config =
        server_config(&config_file, &env).unwrap_or_else(|e| panic!("the server refuses the chart's config: {e}"));
    assert_eq!(get(&config, "mqtt.mode").as_str(), Some("external"));
    assert_eq!(
        get(&config, "http.public_mqtt_tls").as_str(),
        Some("mqtt.example.org:8883")
    );
    assert_eq!(
        get(&config, "mqtt.external.host").as_str(),
        Some("mosquitto.signage.svc")
    );

    // A configuration change rolls the pods (the checksum annotation follows the ConfigMap).
    let other = chart(&VALUES.replace("mqtt.example.org", "screens.example.org")).must();
    let checksum =
        |r: &Value| one(r, "StatefulSet")["spec"]["template"]["metadata"]["annotations"]["checksum/config"].clone();
    assert_ne!(checksum(&r), checksum(&other));
}

#[test]
fn chart_options_switch_their_objects_and_bad_values_name_the_field() {
    // A ServiceMonitor on request (a custom resource: no Kubernetes schema to check it by),
    // an existing claim instead of the chart's, a fixed replica count without the autoscaler.
    let r = chart(&format!(
        "{VALUES}
serviceMonitor: {{enabled: true, interval: 15s, labels: {{release: prom}}}}
persistence: {{existingClaim: shared-luach}}
autoscaling: {{enabled: false}}
replicaCount: 3
podDisruptionBudget: {{enabled: false}}
extraEnv: [{{name: LUACH_PRESENCE__OFFLINE_AFTER_SECS, value: '120'}}]
"
    ))
    .must();
    let monitor = one(&r, "ServiceMonitor");
    assert_eq!(
        monitor["spec"]["endpoints"][0],
        json!({"port": "http", "path": "/metrics", "interval": "15s"})
    );
    assert!(objects(&r, "PersistentVolumeClaim").is_empty());
    assert!(objects(&r, "HorizontalPodAutoscaler").is_empty());
    assert!(objects(&r, "PodDisruptionBudget").is_empty());
    let set = one(&r, "StatefulSet");
    assert_eq!(set["spec"]["replicas"], 3);
    let pod = &set["spec"]["template"]["spec"];
    assert!(
        pod["volumes"].to_string().contains("\"claimName\":\"shared-luach\""),
        "{}",
        pod["volumes"]
    );
    assert!(
        pod["containers"][0]["env"]
            .as_array()
            .must()
            .contains(&json!({"name": "LUACH_PRESENCE__OFFLINE_AFTER_SECS", "value": "120"}))
    );

    // Required values are named when missing; the values schema names a wrong type's field.
    let err = chart("mqtt: {publicHost: mqtt.example.org, external: {host: broker}}").expect_err("no secret");
    assert!(err.contains("secrets.existingSecret"), "{err}");
    let err = chart("secrets: {existingSecret: s}\nmqtt: {publicHost: m.org, external: {host: b, port: eighty}}")
        .expect_err("bad port");
    assert!(err.contains("mqtt.external.port"), "{err}");
    let err = chart(&format!("{VALUES}\nreplicas: 2\n")).expect_err("unknown key");
    assert!(err.contains("replicas"), "{err}");
}

/// The units with their programs pointed at this build, so `verify` finds them.
fn units(dir: &Path) -> Vec<PathBuf> {
    let server = bin_path("luach-server");
    let agent = bin_path("luach-agent");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root().join("deploy/systemd")).must() {
        let path = entry.must().path();
        let text = std::fs::read_to_string(&path)
            .must()
            .replace("/usr/local/bin/luach-server", server.to_str().must())
            .replace("/opt/luach/bin/luach-agent", agent.to_str().must());
        let copy = dir.join(path.file_name().must());
        std::fs::write(&copy, text).must();
        out.push(copy);
    }
    out.sort();
    out
}

#[test]
fn the_systemd_units_verify_and_stay_hardened() {
    let dir = tempfile::tempdir().must();
    let units = units(dir.path());
    let names: Vec<String> = units
        .iter()
        .map(|u| u.file_name().must().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "luach-agent.service",
            "luach-mosquitto-sync.path",
            "luach-mosquitto-sync.service",
            "luach-server.service"
        ]
    );
    let out = run(
        Command::new("systemd-analyze")
            .arg("verify")
            .args(&units)
            .env("SYSTEMD_LOG_LEVEL", "warning"),
        "systemd-analyze",
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );

    // `systemd-analyze security` rates each service from 0 (locked down) to 10 (exposed).
    // The agent keeps what drawing a screen needs (devices, /tmp for the X socket, code
    // generation for GL drivers) and runs as root for the platform's commands.
    let security = |unit: &str| {
        let out = run(
            Command::new("systemd-analyze")
                .args(["security", "--offline=true", "--no-pager"])
                .arg(dir.path().join(unit)),
            "systemd-analyze",
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for (unit, most) in [
        ("luach-server.service", 1.5),
        ("luach-mosquitto-sync.service", 2.0),
        ("luach-agent.service", 6.5),
    ] {
        let text = security(unit);
        let level: f64 = text
            .lines()
            .find_map(|l| {
                l.split_once("Overall exposure level for ")?
                    .1
                    .split_once(": ")?
                    .1
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no exposure level for {unit}: {text}"));
        assert!(level <= most, "{unit}: exposure {level} above {most}:\n{text}");
    }
    // The server's unit fails only the checks it must: it serves the network (address
    // families, no private network or address allow-list), runs from the host's root and
    // reads the clock device systemd always allows.
    let text = security("luach-server.service");
    let failed: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("✗ ")?.split_whitespace().next())
        .collect();
    let allowed: BTreeSet<&str> = [
        "RootDirectory=/RootImage=",
        "RestrictAddressFamilies=~AF_UNIX",
        "RestrictAddressFamilies=~AF_(INET|INET6)",
        "PrivateNetwork=",
        "IPAddressDeny=",
        "DeviceAllow=",
    ]
    .into();
    assert!(
        failed.is_subset(&allowed),
        "luach-server.service lost hardening: {:?}",
        failed.difference(&allowed).collect::<Vec<_>>()
    );
}

/// Waits until `what` holds, for at most `secs` seconds.
fn wait(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn the_compose_broker_script_reloads_mosquitto_when_the_server_rewrites_the_acl() {
    // The files as the compose file's `init` service writes them, for a real Mosquitto.
    let dir = tempfile::tempdir().must();
    let (data, broker) = (dir.path().join("state"), dir.path().join("mosquitto"));
    let (devices, control) = (luach_tests::free_port(), luach_tests::free_port());
    let config = dir.path().join("luach.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[http]\npublic_mqtt_tls = \"localhost:{devices}\"\n[mqtt]\nmode = \"external\"\n\
             [mqtt.external]\nhost = \"localhost\"\nport = {control}\n",
            data.display().to_string()
        ),
    )
    .must();
    let out = run(
        Command::new(bin_path("luach-server"))
            .arg("--config")
            .arg(&config)
            .args(["broker-config", "mosquitto", "--out"])
            .arg(&broker)
            .args(["--devices-bind", "127.0.0.1", "--devices-port", &devices.to_string()])
            .args(["--control-bind", "127.0.0.1", "--control-port", &control.to_string()]),
        "luach-server",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The container runs Mosquitto as the files' owner; run as root here, it would switch to
    // user `mosquitto`, who cannot read them, unless told to stay root.
    let conf = broker.join("mosquitto.conf");
    let text = std::fs::read_to_string(&conf).must();
    std::fs::write(&conf, format!("user root\n{text}")).must();

    let log = dir.path().join("mosquitto.log");
    let mut script = Command::new("sh")
        .arg(root().join("deploy/compose/mosquitto-run.sh"))
        .env("LUACH_BROKER_DIR", &broker)
        .stderr(std::fs::File::create(&log).must())
        .spawn()
        .must();
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    wait("Mosquitto to listen", 20, || {
        std::net::TcpStream::connect(("127.0.0.1", devices)).is_ok()
    });
    assert!(!said().contains("Reloading config"), "{}", said());

    // The server rewrites the ACL (here: one more line); the script notices within its
    // 5 s poll and Mosquitto re-reads its configuration.
    let acl = broker.join("devices.acl");
    let mut text = std::fs::read_to_string(&acl).must();
    text.push_str("\nuser CN=dev1,O=p1\ntopic read /tenants/p1/down/#\n");
    std::fs::write(&acl, text).must();
    wait("Mosquitto to reload", 20, || said().contains("Reloading config"));
    assert!(std::net::TcpStream::connect(("127.0.0.1", devices)).is_ok());

    // SIGTERM to the script stops Mosquitto and the script with it.
    let pid = script.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().must().success());
    wait("the script to end", 20, || script.try_wait().must().is_some());
    wait("Mosquitto to stop listening", 20, || {
        std::net::TcpStream::connect(("127.0.0.1", devices)).is_err()
    });
}
