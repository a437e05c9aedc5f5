//! Issue 6's Must show: the dashboard in a real headless Chromium against a real cluster —
//! three `fleetctl serve` nodes on a private redis-server (registry, sessions and fleet data),
//! 60 machines from `fleetctl agent --simulate` plus three machines with a week of history.
//!
//! A person's path: the dashboard sends them to the login form; a wrong password says so;
//! they log in, see every machine and the cluster, sort and filter, open a machine and its
//! charts over 1 h, 24 h and 7 d; the same browser (same cookie jar) on a second node still
//! shows the dashboard, served by that node; logout, and the back button shows nothing
//! private. Then the two banners: the session revoked elsewhere, and the node going away.
//!
//! Any console error fails the test (except, in the banner scenes, the failed requests they
//! provoke on purpose). Screenshots go to `target/screenshots/`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::Locator;
use serde_json::Value;

use crate::support::browser::Browser;
use crate::support::node::{ADMIN_TOKEN, Node, eventually, get_json, sha256_hex};
use crate::support::{RedisServer, fleetctl_bin};

const PASSWORD: &str = "dashboard-test-password";
const API_KEY: &str = "fleet_6666666666666666666666666666666666666666666666666666666666666666";
const SIMULATED: usize = 60;
/// Machines the test gives a week of history, so the charts have something to draw.
const WITH_HISTORY: [&str; 3] = ["hist-01", "hist-02", "hist-03"];
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

fn write_config(dir: &std::path::Path, redis_port: u16) -> std::path::PathBuf {
    let hash = fleetctl::credentials::hash_password(PASSWORD).unwrap();
    let path = dir.join("fleet.yaml");
    std::fs::write(
        &path,
        format!(
            "server:\n  drain_timeout: 0\n\
             cluster:\n  enabled: true\n  backend: redis\n  heartbeat_interval: 1\n  node_timeout: 3\n  \
             redis_host: 127.0.0.1\n  redis_port: {redis_port}\n\
             sessions:\n  backend: redis\n  redis: {{ host: 127.0.0.1, port: {redis_port} }}\n\
             storage:\n  backend: redis\n  redis: {{ host: 127.0.0.1, port: {redis_port} }}\n\
             auth:\n  users:\n    - {{ username: admin, password_hash: \"{hash}\" }}\n  \
             admin_tokens:\n    - {{ name: tests, sha256: \"{admin}\" }}\n  \
             api_keys:\n    - {{ name: agents, sha256: \"{key}\" }}\n",
            admin = sha256_hex(ADMIN_TOKEN),
            key = sha256_hex(API_KEY),
        ),
    )
    .expect("write config");
    path
}

/// A history-bearing machine's report at `t`.
fn report(vm: &mut fleetctl::agent::simulator::VirtualMachine, name: &str, t: i64) -> Value {
    let mut r = serde_json::to_value(vm.report(t)).expect("report JSON");
    r["machine_id"] = Value::from(name);
    r["hostname"] = Value::from(format!("{name}.example.net"));
    r
}

async fn post_report(client: &reqwest::Client, url: &str, r: &Value) {
    let res = client
        .post(format!("{url}/api/fleet/report"))
        .bearer_auth(API_KEY)
        .json(r)
        .send()
        .await
        .expect("post report");
    assert!(
        res.status().is_success(),
        "report refused: {:?}",
        res.text().await
    );
}

/// A week of history for each of `WITH_HISTORY`: every 20 min for 7 days, every 4 min for
/// the last day, every 30 s for the last hour; spread over the nodes.
async fn backfill(urls: &[String]) {
    let now = fleetctl::agent::now_ms();
    let mut times: Vec<i64> = (1..7 * 72).map(|i| now - 7 * DAY + i * 20 * MIN).collect();
    times.extend((1..360).map(|i| now - DAY + i * 4 * MIN));
    times.extend((1..120).map(|i| now - HOUR + i * 30_000));
    times.retain(|t| *t < now - 30_000);
    times.sort_unstable();
    times.dedup();
    let client = reqwest::Client::new();
    let tasks: Vec<_> = WITH_HISTORY
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let (client, urls, times) = (client.clone(), urls.to_vec(), times.clone());
            tokio::spawn(async move {
                let mut vm = fleetctl::agent::simulator::VirtualMachine::new("hist", i, 7);
                for (n, t) in times.iter().enumerate() {
                    post_report(&client, &urls[n % urls.len()], &report(&mut vm, name, *t)).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("backfill task");
    }
}

/// Keeps the history-bearing machines online while the test runs.
fn keep_reporting(urls: Vec<String>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut vms: Vec<_> = (0..WITH_HISTORY.len())
            .map(|i| fleetctl::agent::simulator::VirtualMachine::new("hist", i, 7))
            .collect();
        for round in 0.. {
            for (i, name) in WITH_HISTORY.iter().enumerate() {
                let r = report(&mut vms[i], name, fleetctl::agent::now_ms());
                // A node may be down on purpose at the end of the test.
                let _ = client
                    .post(format!(
                        "{}/api/fleet/report",
                        urls[(round + i) % urls.len()]
                    ))
                    .bearer_auth(API_KEY)
                    .json(&r)
                    .send()
                    .await;
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    })
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn path_of(b: &Browser) -> String {
    b.client
        .current_url()
        .await
        .expect("current url")
        .path()
        .to_string()
}

/// `fleetctl agent --simulate n` reporting every 2 s to `servers` (comma-separated) for
/// `duration`, killed when dropped.
fn simulate(dir: &std::path::Path, servers: &str, n: usize, duration: &str) -> KillOnDrop {
    let key_file = dir.join("agent.key");
    std::fs::write(&key_file, API_KEY).expect("key file");
    KillOnDrop(
        Command::new(fleetctl_bin())
            .args(["agent", "--simulate", &n.to_string(), "--server", servers])
            .args(["--interval", "2s", "--duration", duration, "--api-key-file"])
            .arg(&key_file)
            .env_remove("FLEETCTL_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn simulator"),
    )
}

/// Until the fleet summary at `url` counts `n` machines online.
async fn wait_online(url: &str, n: usize) {
    eventually(
        Duration::from_secs(30),
        "every machine reported",
        || async {
            let (_, v) = get_json(&format!("{url}/api/fleet/summary"), Some(ADMIN_TOKEN)).await;
            (v["online"].as_u64() == Some(n as u64)).then_some(())
        },
    )
    .await;
}

/// The query string of the browser's address.
async fn query_of(b: &Browser) -> String {
    b.client
        .current_url()
        .await
        .expect("current url")
        .query()
        .unwrap_or("")
        .to_string()
}

/// Click the dashboard's "Next page" link.
async fn next_page(b: &Browser) {
    b.client
        .find(Locator::Css("#page-next"))
        .await
        .expect("Next page link")
        .click()
        .await
        .expect("follow Next page");
}

async fn wait_path(b: &Browser, path: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = path_of(b).await;
        if now == path {
            return;
        }
        if std::time::Instant::now() > deadline {
            panic!("browser is at {now}, expected {path}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(b: &Browser, css: &str) -> usize {
    b.client
        .find_all(Locator::Css(css))
        .await
        .expect("find_all")
        .len()
}

async fn no_console_errors(b: &Browser, scene: &str) {
    let errors = b.console_errors().await;
    assert!(
        errors.is_empty(),
        "console errors during {scene}: {errors:#?}"
    );
}

async fn log_in(b: &Browser, password: &str) {
    let user = b
        .client
        .find(Locator::Css("#username"))
        .await
        .expect("username field");
    user.clear().await.expect("clear");
    user.send_keys("admin").await.expect("type username");
    b.client
        .find(Locator::Css("#password"))
        .await
        .expect("password field")
        .send_keys(password)
        .await
        .expect("type password");
    b.client
        .find(Locator::Css("form[action='/login'] button[type=submit]"))
        .await
        .expect("login button")
        .click()
        .await
        .expect("click login");
}

async fn attr(b: &Browser, css: &str, name: &str) -> Option<String> {
    b.client
        .find(Locator::Css(css))
        .await
        .ok()?
        .attr(name)
        .await
        .ok()
        .flatten()
}

/// Numbers in a column of the machines table, top to bottom.
async fn column(b: &Browser, css: &str) -> Vec<f64> {
    let mut out = Vec::new();
    for e in b.client.find_all(Locator::Css(css)).await.expect("cells") {
        let t = e.text().await.unwrap_or_default();
        out.push(t.trim_end_matches(" %").trim().parse().unwrap_or(f64::NAN));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_uses_the_dashboard_across_the_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let redis = RedisServer::start();
    let config = write_config(dir.path(), redis.port);
    let mut nodes: Vec<Node> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|n| Node::start(&config, n))
        .collect();
    for n in &nodes {
        eventually(Duration::from_secs(15), "node healthy", || async {
            let (code, _) = get_json(&format!("{}/api/fleet/cluster/health", n.url()), None).await;
            (code == 200).then_some(())
        })
        .await;
    }
    let urls: Vec<String> = nodes.iter().map(Node::url).collect();
    let (a, b) = (urls[0].clone(), urls[1].clone());

    // The fleet: a week of history for three machines, 60 simulated ones reporting live.
    let t0 = std::time::Instant::now();
    backfill(&urls).await;
    println!(
        "[measure] backfilled a week of history for 3 machines in {:?}",
        t0.elapsed()
    );
    let _reporter = AbortOnDrop(keep_reporting(urls.clone()));
    let _sim = simulate(dir.path(), &urls.join(","), SIMULATED, "280s");
    let total = SIMULATED + WITH_HISTORY.len();
    wait_online(&a, total).await;

    let browser = Browser::start().await;
    browser.phone(false).await;
    let c = &browser.client;

    // No session: the dashboard sends the browser to the login form.
    c.goto(&format!("{a}/dashboard"))
        .await
        .expect("open dashboard");
    wait_path(&browser, "/login").await;
    browser.screenshot("login").await;
    browser.phone(true).await;
    browser.screenshot("login-phone").await;
    browser.phone(false).await;

    // A wrong password is refused with a message on the form.
    log_in(&browser, "not the password").await;
    browser
        .wait_text(
            "p.error[role=alert]",
            Duration::from_secs(10),
            "login error",
            |t| t.contains("invalid username or password"),
        )
        .await;
    browser.screenshot("login-failed").await;
    // The refused login is answered 401 (the login API's contract, for scripts and browsers
    // alike), which Chromium reports on the console; that one entry is the expected outcome.
    let errors = browser.console_errors().await;
    assert!(
        errors.len() == 1 && errors[0].contains("/login") && errors[0].contains("401"),
        "{errors:#?}"
    );

    // The right one lands on the dashboard with every machine and the whole cluster.
    log_in(&browser, PASSWORD).await;
    wait_path(&browser, "/dashboard").await;
    assert_eq!(
        browser.text("#t-total").await.as_deref(),
        Some(total.to_string().as_str())
    );
    assert_eq!(
        browser.text("#t-online").await.as_deref(),
        Some(total.to_string().as_str())
    );
    assert_eq!(count(&browser, "#machine-rows tr[data-id]").await, total);
    assert_eq!(
        count(&browser, "#machine-rows svg.spark polyline").await,
        2 * total
    );
    assert_eq!(count(&browser, "#node-rows tr").await, 3);
    assert!(
        browser
            .text("#cluster-summary")
            .await
            .unwrap()
            .starts_with("3 of 3 nodes active")
    );
    assert_eq!(browser.text("#served-by").await.as_deref(), Some("node-a"));
    let me = browser
        .text("#node-rows tr[data-id='node-a']")
        .await
        .unwrap();
    assert!(me.contains("this page"), "{me}");
    let leaders = count(&browser, "#node-rows .badge.leader").await;
    assert_eq!(leaders, 1, "exactly one leader shown");
    // The page refreshes itself from the JSON API.
    browser
        .wait_text("#updated-by", Duration::from_secs(12), "a refresh", |t| {
            t.contains("node-a")
        })
        .await;
    no_console_errors(&browser, "login and first refresh").await;
    browser.screenshot("dashboard").await;
    browser.screenshot_full("dashboard-full", false).await;

    // Sorting is a button; the API re-sorts; the header says how.
    c.find(Locator::Css("button.sort[data-key=cpu]"))
        .await
        .expect("cpu sort button")
        .click()
        .await
        .expect("sort by cpu");
    eventually(
        Duration::from_secs(10),
        "rows sorted by CPU, descending",
        || async {
            let cpu = column(&browser, "#machine-rows span.v.cpu").await;
            let sorted = cpu.len() == total && cpu.windows(2).all(|w| w[0] >= w[1]);
            let aria = attr(&browser, "th:has(button[data-key=cpu])", "aria-sort").await;
            (sorted && aria.as_deref() == Some("descending")).then_some(())
        },
    )
    .await;
    assert!(path_of(&browser).await == "/dashboard");
    assert!(
        c.current_url()
            .await
            .unwrap()
            .query()
            .unwrap_or("")
            .contains("sort=-cpu")
    );

    // Filtering by hostname.
    c.find(Locator::Css("#f-hostname"))
        .await
        .expect("filter field")
        .send_keys("hist-")
        .await
        .expect("type filter");
    eventually(
        Duration::from_secs(10),
        "only the hist machines",
        || async { (count(&browser, "#machine-rows tr[data-id]").await == 3).then_some(()) },
    )
    .await;
    browser.screenshot("dashboard-filtered").await;
    // Back to everything, in hostname order.
    c.goto(&format!("{a}/dashboard")).await.expect("reload");
    assert_eq!(count(&browser, "#machine-rows tr[data-id]").await, total);

    browser.dark(true).await;
    browser.screenshot("dashboard-dark").await;
    browser.dark(false).await;
    browser.phone(true).await;
    browser.screenshot("dashboard-phone").await;
    browser.phone(false).await;
    no_console_errors(&browser, "sorting, filtering and reloading").await;

    // Open one machine from the table.
    c.find(Locator::Css("#machine-rows a[href='/machines/hist-01']"))
        .await
        .expect("link to hist-01")
        .click()
        .await
        .expect("open hist-01");
    wait_path(&browser, "/machines/hist-01").await;
    assert_eq!(
        browser.text("h1").await.as_deref(),
        Some("hist-01.example.net")
    );
    assert_eq!(count(&browser, "figure.chart").await, 4);
    assert!(
        count(&browser, "figure.chart svg polyline").await >= 4,
        "every chart draws"
    );
    assert!(
        count(&browser, "figure.chart svg text.xtick").await >= 4 * 3,
        "time axes"
    );
    let cpu_axis = browser.text("#chart-cpu svg").await.unwrap_or_default();
    assert!(
        cpu_axis.contains("100 %") && cpu_axis.contains("0 %"),
        "{cpu_axis}"
    );
    browser.screenshot_full("machine-1h", false).await;
    for (range, label) in [("24h", "24 hours"), ("7d", "7 days")] {
        c.find(Locator::LinkText(label))
            .await
            .expect("range link")
            .click()
            .await
            .expect("choose range");
        eventually(Duration::from_secs(10), "range selected", || async {
            (attr(&browser, ".ranges a[aria-current=page]", "href").await
                == Some(format!("/machines/hist-01?range={range}")))
            .then_some(())
        })
        .await;
        let note = browser.text("p.sub").await.unwrap_or_default();
        assert!(note.contains("-minute resolution"), "{range}: {note}");
        assert!(
            count(&browser, "#chart-network svg polyline").await >= 2,
            "{range}: rx and tx"
        );
        browser
            .screenshot_full(&format!("machine-{range}"), false)
            .await;
    }
    browser.phone(true).await;
    browser.screenshot_full("machine-7d-phone", true).await;
    browser.phone(false).await;
    browser.dark(true).await;
    browser.screenshot_full("machine-7d-dark", false).await;
    browser.dark(false).await;
    no_console_errors(&browser, "machine pages").await;

    // The same browser on another node: the cookie set by node-a is sent to node-b (cookies
    // are per host, not per port), and node-b knows the session.
    let cookie_a = c
        .get_named_cookie("fleet_session")
        .await
        .expect("cookie from node-a");
    c.goto(&format!("{b}/dashboard"))
        .await
        .expect("open node-b");
    wait_path(&browser, "/dashboard").await;
    assert_eq!(browser.text("#served-by").await.as_deref(), Some("node-b"));
    let me = browser
        .text("#node-rows tr[data-id='node-b']")
        .await
        .unwrap();
    assert!(me.contains("this page"), "{me}");
    assert_eq!(count(&browser, "#machine-rows tr[data-id]").await, total);
    let cookie_b = c
        .get_named_cookie("fleet_session")
        .await
        .expect("cookie on node-b");
    assert_eq!(
        cookie_a.value(),
        cookie_b.value(),
        "one session, one cookie"
    );
    browser.screenshot("dashboard-node-b").await;

    // Logout (a form carrying the CSRF token) ends the session everywhere.
    c.find(Locator::Css("form[action='/logout'] button"))
        .await
        .expect("logout button")
        .click()
        .await
        .expect("log out");
    wait_path(&browser, "/login").await;
    // Back: the private page is fetched again (no-store) and the server says log in.
    c.back().await.expect("back");
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_path(&browser, "/login").await;
    let source = c.source().await.expect("page source");
    assert!(
        !source.contains("hist-01") && !source.contains("machine-rows"),
        "nothing private after logout + back"
    );
    c.goto(&format!("{a}/machines/hist-01"))
        .await
        .expect("node-a after logout");
    wait_path(&browser, "/login").await;
    no_console_errors(&browser, "second node, logout and back").await;

    // The session revoked elsewhere: the open dashboard says so and offers the login form.
    log_in(&browser, PASSWORD).await;
    wait_path(&browser, "/dashboard").await;
    let id = c
        .get_named_cookie("fleet_session")
        .await
        .expect("cookie")
        .value()
        .to_string();
    let http = reqwest::Client::new();
    let session: Value = http
        .get(format!("{}/api/session", urls[2]))
        .header("cookie", format!("fleet_session={id}"))
        .send()
        .await
        .expect("whoami")
        .json()
        .await
        .expect("session JSON");
    let res = http
        .post(format!("{}/logout", urls[2]))
        .header("cookie", format!("fleet_session={id}"))
        .header(
            "x-csrf-token",
            session["csrf_token"].as_str().expect("csrf"),
        )
        .send()
        .await
        .expect("logout elsewhere");
    assert!(res.status().is_success(), "{}", res.status());
    browser
        .wait_text(
            "#banner-session",
            Duration::from_secs(12),
            "session banner",
            |t| t.contains("session has expired"),
        )
        .await;
    assert_eq!(
        attr(&browser, "#banner-session a", "href").await.as_deref(),
        Some("/login")
    );
    browser.screenshot("dashboard-session-ended").await;
    let errors = browser.console_errors().await;
    assert!(
        errors.iter().all(|e| e.contains("401")),
        "only the refused API calls may log errors: {errors:#?}"
    );

    // The node serving the page goes away: a banner, and the page keeps what it showed.
    log_in_again(&browser, &a).await;
    nodes[0].kill9();
    browser
        .wait_text("#banner-api", Duration::from_secs(15), "API banner", |t| {
            t.contains("cannot be reached")
        })
        .await;
    assert_eq!(count(&browser, "#machine-rows tr[data-id]").await, total);
    browser.screenshot("dashboard-api-down").await;
    let errors = browser.console_errors().await;
    assert!(
        errors
            .iter()
            .all(|e| e.contains("ERR_CONNECTION_REFUSED") || e.contains("Failed to fetch")),
        "only the failed API calls may log errors: {errors:#?}"
    );
    browser.close().await;
}

async fn log_in_again(browser: &Browser, a: &str) {
    browser
        .client
        .goto(&format!("{a}/login"))
        .await
        .expect("login page");
    log_in(browser, PASSWORD).await;
    wait_path(browser, "/dashboard").await;
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Ids of the machine rows the browser shows, top to bottom.
async fn shown_ids(b: &Browser) -> Vec<String> {
    let mut out = Vec::new();
    for e in b
        .client
        .find_all(Locator::Css("#machine-rows tr[data-id]"))
        .await
        .expect("rows")
    {
        out.push(e.attr("data-id").await.ok().flatten().unwrap_or_default());
    }
    out
}

/// A fleet larger than one page: the dashboard shows one page and a "Next page" link; the
/// second page shows the rest; the script's refresh keeps refreshing the page being shown
/// (not the first one, not the whole fleet); a new sort starts again from the first page.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_pages_through_a_fleet_larger_than_a_page() {
    const MACHINES: usize = 130;
    let dir = tempfile::tempdir().expect("tempdir");
    let redis = RedisServer::start();
    let config = write_config(dir.path(), redis.port);
    let node = Node::start(&config, "node-p");
    let url = node.url();
    eventually(Duration::from_secs(15), "node healthy", || async {
        let (code, _) = get_json(&format!("{url}/api/fleet/cluster/health"), None).await;
        (code == 200).then_some(())
    })
    .await;
    let _sim = simulate(dir.path(), &url, MACHINES, "200s");
    wait_online(&url, MACHINES).await;

    let browser = Browser::start().await;
    browser.phone(false).await;
    let c = &browser.client;
    c.goto(&format!("{url}/login")).await.expect("login page");
    log_in(&browser, PASSWORD).await;
    wait_path(&browser, "/dashboard").await;
    let first = shown_ids(&browser).await;
    assert_eq!(first.len(), 100, "one page of rows");
    assert!(
        browser
            .text("#machines-count")
            .await
            .unwrap_or_default()
            .contains("showing 100 of 130 matching")
    );
    assert_eq!(
        attr(&browser, "#page-first", "hidden").await.as_deref(),
        Some("true")
    );

    // "Next page" is a plain link; the second page holds the other 30.
    next_page(&browser).await;
    eventually(Duration::from_secs(10), "the second page", || async {
        let q = query_of(&browser).await;
        (q.contains("cursor=") && count(&browser, "#machine-rows tr[data-id]").await == 30)
            .then_some(())
    })
    .await;
    let second = shown_ids(&browser).await;
    assert!(second.iter().all(|id| !first.contains(id)), "no duplicates");
    assert_eq!(
        attr(&browser, "#page-next", "hidden").await.as_deref(),
        Some("true")
    );
    assert_eq!(attr(&browser, "#page-first", "hidden").await, None);

    // The refresh answers for this page: still the same 30 machines, still the second page.
    browser
        .wait_text("#updated-by", Duration::from_secs(12), "a refresh", |t| {
            t.contains("node-p")
        })
        .await;
    assert_eq!(
        shown_ids(&browser).await,
        second,
        "the refresh keeps the page"
    );
    assert!(
        browser
            .text("#machines-count")
            .await
            .unwrap_or_default()
            .contains("showing 30 of 30 matching from here on, 130 in the fleet")
    );
    assert_eq!(
        attr(&browser, "#page-next", "hidden").await.as_deref(),
        Some("true")
    );
    assert!(
        query_of(&browser).await.contains("cursor="),
        "the address still names the page"
    );

    // A new sort starts from the first page, with a Next link for that sort.
    c.find(Locator::Css("button.sort[data-key=cpu]"))
        .await
        .expect("cpu sort button")
        .click()
        .await
        .expect("sort by cpu");
    eventually(Duration::from_secs(10), "first page by CPU", || async {
        let n = count(&browser, "#machine-rows tr[data-id]").await;
        let next = attr(&browser, "#page-next", "href")
            .await
            .unwrap_or_default();
        (n == 100 && next.contains("sort=-cpu") && next.contains("cursor=")).then_some(())
    })
    .await;
    let q = query_of(&browser).await;
    assert!(q.contains("sort=-cpu") && !q.contains("cursor="), "{q}");
    assert_eq!(
        attr(&browser, "#page-first", "hidden").await.as_deref(),
        Some("true")
    );
    next_page(&browser).await;
    // The machines keep reporting, so their CPU (the sort key) moves across the cursor
    // between the two pages: the second page holds about, not exactly, the other 30.
    eventually(Duration::from_secs(10), "second page by CPU", || async {
        let q = query_of(&browser).await;
        let n = count(&browser, "#machine-rows tr[data-id]").await;
        (q.contains("sort=-cpu") && q.contains("cursor=") && (1..100).contains(&n)).then_some(())
    })
    .await;
    assert_eq!(
        attr(&browser, "th:has(button[data-key=cpu])", "aria-sort")
            .await
            .as_deref(),
        Some("descending")
    );
    no_console_errors(&browser, "paging").await;
    browser.screenshot("dashboard-page-2").await;
    browser.close().await;
}
