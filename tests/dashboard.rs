//! The dashboard (feature `dashboard`): its JSON endpoints and `/metrics` read back over HTTP
//! while the runtime runs, the Prometheus text parsed, and its refusals.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use rustyray::{Bundle, Config, PlacementGroup, Runtime};
use serde_json::Value;

#[rustyray::remote]
fn double(x: u64) -> u64 {
    x * 2
}

#[rustyray::remote]
fn refuse(x: u64) -> anyhow::Result<u64> {
    anyhow::bail!("{x} is refused")
}

/// Counts its calls; a call asked to fail panics, which restarts it.
#[rustyray::actor]
struct Flaky {
    calls: u64,
}

#[rustyray::actor]
impl Flaky {
    fn new() -> Self {
        Flaky { calls: 0 }
    }

    fn work(&mut self, fail: bool) -> u64 {
        assert!(!fail, "asked to fail");
        self.calls += 1;
        self.calls
    }
}

fn runtime() -> Runtime {
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = Config::default()
        .num_cpus(2)
        .dashboard(local)
        .dashboard_interval(Duration::ZERO); // every request sees what was just done
    Runtime::new(config).expect("a runtime")
}

fn fetch(addr: SocketAddr, path: &str) -> String {
    ureq::get(&format!("http://{addr}{path}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .body_mut()
        .read_to_string()
        .unwrap()
}

fn json(addr: SocketAddr, path: &str) -> Value {
    serde_json::from_str(&fetch(addr, path)).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// The row of `function` in the snapshot's tasks.
fn row<'a>(snapshot: &'a Value, function: &str) -> &'a Value {
    snapshot["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["function"] == function)
        .unwrap_or_else(|| panic!("no row for {function} in {snapshot:#}"))
}

#[test]
fn the_json_endpoints_show_what_ran_and_what_lives() {
    let rt = runtime();
    let _guard = rt.enter();
    let addr = rt.dashboard_address().expect("the dashboard listens");
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");

    let doubled: Vec<_> = (0..20).map(double::remote).collect();
    assert_eq!(rustyray::get_all(&doubled).unwrap().len(), 20);
    let refused = refuse::options()
        .max_retries(2)
        .retry_exceptions(true)
        .remote(7);
    assert!(rustyray::get(&refused).is_err());
    let flaky = Flaky::options().max_restarts(1).remote();
    assert!(rustyray::get(&flaky.work(true)).is_err());
    assert_eq!(rustyray::get(&flaky.work(false)).unwrap(), 1);
    let pg = PlacementGroup::builder()
        .bundle(Bundle::new().cpus(1.0))
        .name("watched")
        .create()
        .unwrap();
    let kept = rustyray::put(vec![1u8; 1000]).unwrap();

    let snapshot = json(addr, "/api/snapshot");
    assert_eq!(snapshot["runtime"], rt.id());
    let double_row = row(&snapshot, "double");
    assert_eq!(double_row["kind"], "task");
    assert_eq!(double_row["finished"], 20);
    assert_eq!(double_row["submitted"], 20);
    assert_eq!(double_row["failed"], 0);
    assert!(double_row["run_seconds"].as_f64().unwrap() > 0.0);
    let refuse_row = row(&snapshot, "refuse");
    assert_eq!(refuse_row["failed"], 1);
    assert_eq!(refuse_row["retried"], 2);
    let call_row = row(&snapshot, "work");
    assert_eq!(call_row["kind"], "actor_call");
    assert_eq!(call_row["actor"], "Flaky");
    let actors = snapshot["actors"].as_array().unwrap();
    assert_eq!(actors.len(), 1, "{actors:?}");
    assert_eq!(actors[0]["class"], "Flaky");
    assert_eq!(actors[0]["state"], "ALIVE");
    assert_eq!(actors[0]["restarts"], 1);
    assert!(snapshot["objects"]["count"].as_u64().unwrap() >= 1);
    let groups = snapshot["placement_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["name"], "watched");
    assert_eq!(groups[0]["bundles"][0][0][0], "CPU");
    assert!(!snapshot["timeline"].as_array().unwrap().is_empty());

    // Each part has an endpoint of its own, with the same shape.
    assert!(json(addr, "/api/tasks").as_array().unwrap().len() >= 3);
    assert_eq!(json(addr, "/api/actors").as_array().unwrap().len(), 1);
    assert!(json(addr, "/api/objects")["count"].as_u64().unwrap() >= 1);
    assert_eq!(
        json(addr, "/api/placement_groups")
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(!json(addr, "/api/timeline").as_array().unwrap().is_empty());
    assert!(fetch(addr, "/").contains("<title>RustyRay dashboard</title>"));

    // Counts only grow, and show new work at the next request.
    let more: Vec<_> = (0..5).map(double::remote).collect();
    rustyray::get_all(&more).unwrap();
    assert_eq!(row(&json(addr, "/api/snapshot"), "double")["finished"], 25);
    rustyray::remove_placement_group(&pg).unwrap();
    drop(kept);
}

#[test]
fn metrics_parse_as_prometheus_text_with_the_named_series() {
    let rt = runtime();
    let _guard = rt.enter();
    let addr = rt.dashboard_address().unwrap();
    let doubled: Vec<_> = (0..12).map(double::remote).collect();
    rustyray::get_all(&doubled).unwrap();
    let refused = refuse::options()
        .max_retries(1)
        .retry_exceptions(true)
        .remote(1);
    assert!(rustyray::get(&refused).is_err());

    let text = fetch(addr, "/metrics");
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    let value = |name: &str, function: &str| -> f64 {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && s.labels.get("function") == Some(function))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("no {name} for {function} in\n{text}"))
    };
    assert_eq!(value("rustyray_tasks_submitted_total", "double"), 12.0);
    assert_eq!(value("rustyray_tasks_finished_total", "double"), 12.0);
    assert_eq!(value("rustyray_tasks_failed_total", "double"), 0.0);
    assert_eq!(value("rustyray_tasks_failed_total", "refuse"), 1.0);
    assert_eq!(value("rustyray_tasks_retried_total", "refuse"), 1.0);
    assert_eq!(value("rustyray_task_run_seconds_count", "double"), 12.0);
    assert!(value("rustyray_task_run_seconds_sum", "double") > 0.0);
    let histogram = scrape
        .samples
        .iter()
        .filter(|s| s.labels.get("function") == Some("double"))
        .find_map(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => Some(buckets.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no histogram for double in\n{text}"));
    let last = histogram.last().expect("buckets");
    assert!(
        last.less_than.is_infinite(),
        "the last bucket is +Inf:\n{text}"
    );
    assert_eq!(last.count, 12.0);
    assert!(histogram.windows(2).all(|w| w[0].count <= w[1].count));
    for series in [
        "rustyray_tasks",
        "rustyray_object_store_bytes",
        "rustyray_object_store_limit_bytes",
        "rustyray_spilled_bytes",
        "rustyray_spilled_objects",
        "rustyray_actors",
        "rustyray_placement_groups",
    ] {
        assert!(
            scrape.samples.iter().any(|s| s.metric == series),
            "{series} missing in\n{text}"
        );
    }
}

#[test]
fn no_dashboard_unless_asked_and_a_taken_port_is_a_clear_error() {
    let quiet = Runtime::new(Config::default().num_cpus(1)).unwrap();
    assert_eq!(quiet.dashboard_address(), None);

    let first = runtime();
    let taken = first.dashboard_address().unwrap();
    let second = Runtime::new(Config::default().num_cpus(1).dashboard(taken));
    let message = second.unwrap_err().to_string();
    assert!(message.contains(&taken.to_string()), "{message}");
    assert!(message.contains("could not listen"), "{message}");
    // The first one still serves.
    assert!(fetch(taken, "/api/snapshot").contains("\"tasks\""));
}

#[rustyray::remote]
async fn forever() -> u64 {
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[rustyray::remote]
fn broken(x: u64) -> anyhow::Result<u64> {
    anyhow::bail!("input {x} is broken")
}

#[test]
fn the_submitted_count_never_goes_back_when_a_running_task_is_cancelled() {
    let rt = runtime();
    let _guard = rt.enter();
    let addr = rt.dashboard_address().unwrap();
    let running = forever::remote();
    let other = forever::remote();
    let submitted = |addr| {
        let snapshot = json(addr, "/api/snapshot");
        row(&snapshot, "forever")["submitted"].as_u64().unwrap()
    };
    assert_eq!(submitted(addr), 2);
    // Both running (or about to): cancel them, and the count stays.
    assert!(rustyray::cancel(&running));
    assert!(rustyray::cancel(&other));
    assert!(rustyray::get(&running).is_err());
    assert!(rustyray::get(&other).is_err());
    assert_eq!(submitted(addr), 2);
    let snapshot = json(addr, "/api/snapshot");
    assert_eq!(row(&snapshot, "forever")["finished"], 2);
}

#[test]
fn a_failing_function_shows_its_last_errors() {
    let rt = runtime();
    let _guard = rt.enter();
    let addr = rt.dashboard_address().unwrap();
    for x in 0..7 {
        assert!(rustyray::get(&broken::remote(x)).is_err());
    }
    let snapshot = json(addr, "/api/snapshot");
    let errors = row(&snapshot, "broken")["errors"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(errors.len(), 5, "the last five are kept: {errors:?}");
    let last = &errors[4];
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("input 6 is broken"),
        "{last}"
    );
    assert!(
        last["thread"].as_str().unwrap().starts_with("rustyray"),
        "{last}"
    );
    assert!(last["at"].as_f64().unwrap() > 0.0);
    assert!(snapshot["rate"].is_array());
}

/// Sends `request` raw and reads the answer until the server closes the connection.
fn raw(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn other_hosts_are_refused_on_a_loopback_bind() {
    let rt = runtime();
    let addr = rt.dashboard_address().unwrap();
    let evil = raw(
        addr,
        "GET /api/snapshot HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert!(evil.starts_with("HTTP/1.1 421"), "{evil}");
    assert!(!evil.contains("\"tasks\""), "{evil}");
    let port = addr.port();
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let ok = raw(
            addr,
            &format!("GET /api/snapshot HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert!(ok.starts_with("HTTP/1.1 200"), "{host}: {ok}");
    }
}

#[test]
fn connections_past_the_cap_are_closed_at_once() {
    let rt = runtime();
    let addr = rt.dashboard_address().unwrap();
    // Idle connections past the cap are closed at once; those under it stay until their
    // header timeout (10 s). Connections are accepted in the order they were made.
    let idle: Vec<TcpStream> = (0..80).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for (i, mut stream) in idle.iter().enumerate().skip(64) {
        // Far less than the header timeout: a connection closed by it would time out here.
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut byte = [0u8; 1];
        let read = stream.read(&mut byte);
        assert!(
            matches!(read, Ok(0)),
            "connection {i} past the cap: {read:?}"
        );
    }
    let mut first = &idle[0];
    first
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let read = first.read(&mut [0u8; 1]);
    assert!(
        read.is_err(),
        "a connection under the cap stays open: {read:?}"
    );
}

#[test]
fn a_half_sent_request_is_closed() {
    let rt = runtime();
    let addr = rt.dashboard_address().unwrap();
    // A request that never finishes its headers is closed by the server.
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(b"GET /api/snapshot HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    half.set_read_timeout(Some(common_guard())).unwrap();
    let mut rest = Vec::new();
    let read = half.read_to_end(&mut rest);
    assert!(
        read.is_ok(),
        "closed by the server, not timed out here: {read:?}"
    );
    // And the dashboard still answers.
    assert!(fetch(addr, "/api/tasks").starts_with('['));
}

/// A bound on waits that would otherwise hang a broken test: far above the header timeout.
fn common_guard() -> Duration {
    Duration::from_secs(120)
}
