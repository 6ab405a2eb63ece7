//! The deployment files (`compose.yaml`, `deploy/`) agree with the binary: they parse, every
//! variable they set is a setting it reads and its value passes its parser and checks,
//! ports and probe paths are the ones it serves, and the objects reference each other.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::{CommandFactory as _, Parser as _};
use serde_json::Value;
use usergraph::config::{Cli, Config};

use crate::both_backends;
use crate::helpers::{Backend, TestApp};

both_backends!(probe_paths_answer_as_the_manifests_expect);

const MANIFESTS: &str = "deploy/kubernetes";

/// Variables the OpenTelemetry SDK reads itself, beside those in `usergraph --help`.
const OTEL_VARIABLES: [&str; 4] = [
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_EXPORTER_OTLP_HEADERS",
];

/// Every YAML document of `text`, merge keys (`<<: *anchor`) applied.
fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| {
            let mut value = <serde_norway::Value as serde::Deserialize>::deserialize(document)
                .expect("valid YAML");
            value.apply_merge().expect("merge keys");
            serde_json::to_value(value).expect("YAML as JSON")
        })
        .collect()
}

/// The Kubernetes objects by `Kind/name`.
fn objects() -> BTreeMap<String, Value> {
    let mut objects = BTreeMap::new();
    for entry in std::fs::read_dir(MANIFESTS).expect("deploy/kubernetes") {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "kustomization.yaml") {
            continue;
        }
        for object in documents(&std::fs::read_to_string(&path).unwrap()) {
            let key = format!(
                "{}/{}",
                object["kind"].as_str().expect("a kind"),
                object["metadata"]["name"].as_str().expect("a name")
            );
            assert!(objects.insert(key.clone(), object).is_none(), "{key} twice");
        }
    }
    objects
}

/// The configuration the binary builds from `variables`, as if they were its environment:
/// each becomes the flag of the setting that reads it, so clap's parsers and `validate`
/// judge the values.
fn config_from(variables: &BTreeMap<String, String>) -> Config {
    let command = Cli::command();
    let mut args = vec!["usergraph".to_owned()];
    for (name, value) in variables {
        if OTEL_VARIABLES.contains(&name.as_str()) {
            continue;
        }
        let flag = command
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == name.as_str()))
            .and_then(|a| a.get_long())
            .unwrap_or_else(|| panic!("{name} is not a setting of usergraph"));
        args.extend([format!("--{flag}"), value.clone()]);
    }
    let config = Cli::try_parse_from(&args)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .config;
    config.validate().expect("settings usergraph accepts");
    config
}

fn strings(map: &Value) -> BTreeMap<String, String> {
    map.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn port_of(container: &Value, name: &str) -> u64 {
    container["ports"]
        .as_array()
        .and_then(|ports| ports.iter().find(|p| p["name"] == name))
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port named {name}"))
}

fn mount<'a>(container: &'a Value, volume: &str) -> &'a str {
    container["volumeMounts"]
        .as_array()
        .and_then(|mounts| mounts.iter().find(|m| m["name"] == volume))
        .and_then(|m| m["mountPath"].as_str())
        .unwrap_or_else(|| panic!("volume {volume} is not mounted"))
}

/// Whether every label `selector` asks for is on `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| &labels[k] == v))
}

#[test]
fn kubernetes_manifests_agree_with_the_binary() {
    let objects = objects();
    let kustomization =
        &documents(&std::fs::read_to_string(format!("{MANIFESTS}/kustomization.yaml")).unwrap())[0];
    let listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for entry in std::fs::read_dir(MANIFESTS).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            name == "kustomization.yaml" || listed.contains(&name.as_str()),
            "{name} is not in the kustomization"
        );
    }
    let get = |key: &str| {
        objects
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {:?}", objects.keys()))
    };
    let deployment = get("Deployment/usergraph");
    let pod = &deployment["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert!(selects(
        &deployment["spec"]["selector"]["matchLabels"],
        labels
    ));
    let container = &pod["spec"]["containers"][0];

    // The settings: the ConfigMap and Secret the container reads, judged by the binary.
    let mut variables = BTreeMap::new();
    for source in container["envFrom"].as_array().unwrap() {
        if let Some(name) = source["configMapRef"]["name"].as_str() {
            variables.extend(strings(&get(&format!("ConfigMap/{name}"))["data"]));
        }
        if let Some(name) = source["secretRef"]["name"].as_str() {
            variables.extend(strings(&get(&format!("Secret/{name}"))["stringData"]));
        }
    }
    assert!(variables.contains_key("DATABASE_URL"));
    let config = config_from(&variables);

    // Ports and probes.
    assert_eq!(u64::from(config.listen.port()), port_of(container, "http"));
    let metrics = config
        .metrics_listen
        .expect("metrics on a port of their own");
    assert_eq!(u64::from(metrics.port()), port_of(container, "metrics"));
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/port"],
        metrics.port().to_string()
    );
    for (probe, path) in [
        ("startupProbe", "/health"),
        ("livenessProbe", "/health"),
        ("readinessProbe", "/ready"),
    ] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(get["port"], "http", "{probe}");
    }

    // Shutdown fits in the grace period Kubernetes gives.
    let grace = pod["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    assert!(Duration::from_secs(grace) > config.shutdown_timeout);
    assert!(
        config.shutdown_delay > Duration::ZERO,
        "no time to leave the endpoints"
    );

    // Resources, as the benchmark sized them (peak RSS under 100 MB).
    let resources = &container["resources"];
    assert!(resources["requests"]["cpu"].is_string());
    assert!(resources["requests"]["memory"].is_string());
    assert!(resources["limits"]["memory"].is_string());

    // Volumes: the keys where USERGRAPH_JWT_KEY_DIR says, avatars on the shared claim.
    let volumes = pod["spec"]["volumes"].as_array().unwrap();
    let volume = |name: &str| {
        volumes
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no volume {name}"))
    };
    assert_eq!(
        mount(container, "keys"),
        config.jwt_key_dir().to_str().unwrap()
    );
    // Every pod opens TOTP secrets with the one key of the Secret, not one of its own.
    assert_eq!(
        config.mfa_key_file().parent(),
        Some(config.jwt_key_dir().as_path())
    );
    assert_eq!(
        mount(container, "uploads"),
        config.uploads_path().to_str().unwrap()
    );
    let claim = volume("uploads")["persistentVolumeClaim"]["claimName"]
        .as_str()
        .unwrap();
    let pvc = get(&format!("PersistentVolumeClaim/{claim}"));
    assert!(
        pvc["spec"]["accessModes"]
            .as_array()
            .unwrap()
            .contains(&Value::from("ReadWriteMany"))
    );
    let keys_secret = volume("secret-keys")["secret"]["secretName"]
        .as_str()
        .unwrap();
    get(&format!("Secret/{keys_secret}"));
    for c in pod["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .chain([container])
    {
        for m in c["volumeMounts"].as_array().unwrap() {
            volume(m["name"].as_str().unwrap());
        }
    }
    let init = &pod["spec"]["initContainers"][0];
    assert_eq!(mount(init, "keys"), mount(container, "keys"));

    // The Service, the autoscaler and the disruption budget point at these pods.
    let service = get("Service/usergraph");
    assert!(selects(&service["spec"]["selector"], labels));
    for port in service["spec"]["ports"].as_array().unwrap() {
        port_of(container, port["targetPort"].as_str().unwrap());
    }
    let hpa = &get("HorizontalPodAutoscaler/usergraph")["spec"];
    assert_eq!(hpa["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(hpa["scaleTargetRef"]["name"], "usergraph");
    let pdb = &get("PodDisruptionBudget/usergraph")["spec"];
    assert!(selects(&pdb["selector"]["matchLabels"], labels));
    assert!(pdb["minAvailable"].as_u64().unwrap() < hpa["minReplicas"].as_u64().unwrap());
}

#[test]
fn compose_runs_two_instances_behind_a_proxy() {
    let compose = &documents(&std::fs::read_to_string("compose.yaml").unwrap())[0];
    let services = compose["services"].as_object().unwrap();
    for (name, service) in services {
        if name != "keys" {
            assert!(
                service["healthcheck"].is_object(),
                "{name} has no health check"
            );
        }
    }
    let nginx = std::fs::read_to_string("deploy/compose/nginx.conf").unwrap();
    let proxy_ip = services["proxy"]["networks"]["backend"]["ipv4_address"]
        .as_str()
        .unwrap();
    let mut databases = Vec::new();
    for name in ["usergraph-a", "usergraph-b"] {
        let service = &services[name];
        let config = config_from(&strings(&service["environment"]));
        assert!(
            nginx.contains(&format!("server {name}:{} ", config.listen.port())),
            "nginx does not send to {name}"
        );
        assert!(
            config.trusted_proxies.contains(proxy_ip.parse().unwrap()),
            "{name} must believe the proxy"
        );
        let mounts: Vec<&str> = service["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let keys = format!("keys:{}", config.jwt_key_dir().display());
        assert_eq!(
            config.mfa_key_file().parent(),
            Some(config.jwt_key_dir().as_path()),
            "{name}: the MFA key must be on the shared volume"
        );
        let uploads = format!("uploads:{}", config.uploads_path().display());
        assert!(mounts.contains(&keys.as_str()), "{name}: {mounts:?}");
        assert!(mounts.contains(&uploads.as_str()), "{name}: {mounts:?}");
        assert_eq!(
            service["depends_on"]["keys"]["condition"],
            "service_completed_successfully"
        );
        assert!(config.redis_url.is_some(), "{name} shares rate limits");
        databases.push(variables_of(service, "DATABASE_URL"));
    }
    assert_eq!(databases[0], databases[1], "one database for both");
    let keys = &services["keys"];
    let config = config_from(&strings(&keys["environment"]));
    assert!(
        keys["volumes"][0]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{}", config.jwt_key_dir().display()))
    );
}

fn variables_of(service: &Value, name: &str) -> String {
    service["environment"][name]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn probe_paths_answer_as_the_manifests_expect(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for path in ["/health", "/ready"] {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let (status, _, _) = app.send(request).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}
