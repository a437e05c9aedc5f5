//! First paint of a fleetctl page in headless Chromium, as the browser itself measures it, for
//! `scripts/bench scale` and by hand:
//!
//!   echo PASSWORD | cargo run --release --example bench_paint -- http://127.0.0.1:8768/dashboard admin 10
//!
//! Logs in through the login form (as a person does), loads the page once to warm up (the
//! embedded assets are then cached, as on any later visit), then loads it RUNS times (default
//! 10) and reads the Performance API after each load: `first-contentful-paint` from
//! `performance.getEntriesByType('paint')`, and `responseEnd` and the HTML's size from the
//! navigation entry. Prints min / median / max on stderr and one JSON line on stdout.
//!
//! Needs `chromium` and `chromedriver` (Debian: `chromium`, `chromium-driver`) on PATH; fails
//! when either is missing.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long one load may take before the run is a failure rather than a slow sample.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (page, user, runs) = match args.as_slice() {
        [page, user] => (page, user, 10),
        [page, user, runs] => (page, user, runs.parse().context("RUNS must be a number")?),
        _ => bail!("usage: echo PASSWORD | bench_paint PAGE_URL USERNAME [RUNS]"),
    };
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("read the password from stdin")?;
    let password = password.trim_end_matches(['\r', '\n']);
    let page = url::Url::parse(page).with_context(|| format!("PAGE_URL `{page}`"))?;

    let browser = Browser::start().await?;
    let result = measure(&browser.client, &page, user, password, runs).await;
    let _ = browser.client.clone().close().await;
    let samples = result?;

    let fcp: Vec<f64> = samples.iter().map(|s| s.fcp_ms).collect();
    let response_end: Vec<f64> = samples.iter().map(|s| s.response_end_ms).collect();
    let html_bytes = samples.iter().map(|s| s.html_bytes).max().unwrap_or(0);
    let rows = samples.last().map(|s| s.rows).unwrap_or(0);
    eprintln!(
        "{page}: {runs} loads, {rows} rows, HTML {:.0} KiB",
        html_bytes as f64 / 1024.0
    );
    eprintln!("  first contentful paint ms  {}", stats_text(&fcp));
    eprintln!("  response end ms            {}", stats_text(&response_end));
    println!(
        "{}",
        json!({
            "page": page.as_str(),
            "runs": runs,
            "rows": rows,
            "html_bytes": html_bytes,
            "fcp_ms": stats(&fcp),
            "response_end_ms": stats(&response_end),
            "chromium": browser.version,
        })
    );
    Ok(())
}

/// One load of the page, as the Performance API saw it.
struct Sample {
    fcp_ms: f64,
    response_end_ms: f64,
    html_bytes: u64,
    rows: u64,
}

async fn measure(
    c: &Client,
    page: &url::Url,
    user: &str,
    password: &str,
    runs: usize,
) -> anyhow::Result<Vec<Sample>> {
    c.goto(page.join("/login")?.as_str()).await?;
    c.find(Locator::Css("#username"))
        .await?
        .send_keys(user)
        .await?;
    c.find(Locator::Css("#password"))
        .await?
        .send_keys(password)
        .await?;
    c.find(Locator::Css("form[action='/login'] button[type=submit]"))
        .await?
        .click()
        .await?;
    let deadline = Instant::now() + PAGE_TIMEOUT;
    while c.current_url().await?.path() == "/login" {
        if Instant::now() > deadline {
            bail!("still on /login after submitting the form: wrong username or password?");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The warm-up: the first load after login also fills the asset cache.
    load(c, page).await.context("warm-up load")?;
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs {
        samples.push(
            load(c, page)
                .await
                .with_context(|| format!("load {}", i + 1))?,
        );
    }
    Ok(samples)
}

/// Load the page (WebDriver returns after the load event) and read its paint and navigation
/// entries; first-contentful-paint can be recorded a frame after the load event, so wait.
async fn load(c: &Client, page: &url::Url) -> anyhow::Result<Sample> {
    c.goto(page.as_str()).await?;
    let at = c.current_url().await?;
    if at.path() != page.path() {
        bail!("asked for {page}, the browser is at {at}: is the session gone?");
    }
    let deadline = Instant::now() + PAGE_TIMEOUT;
    loop {
        let v = c
            .execute(
                "const p = performance.getEntriesByName('first-contentful-paint')[0];
                 const n = performance.getEntriesByType('navigation')[0];
                 return p && n ? {
                   fcp: p.startTime, responseEnd: n.responseEnd, bytes: n.decodedBodySize,
                   rows: document.querySelectorAll('#machine-rows tr[data-id]').length,
                 } : null;",
                vec![],
            )
            .await?;
        if let Value::Object(m) = v {
            let num = |k: &str| m.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
            return Ok(Sample {
                fcp_ms: num("fcp"),
                response_end_ms: num("responseEnd"),
                html_bytes: num("bytes") as u64,
                rows: num("rows") as u64,
            });
        }
        if Instant::now() > deadline {
            bail!("no first-contentful-paint entry for {page} within {PAGE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn stats(xs: &[f64]) -> Value {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let median = match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    };
    json!({
        "min": v.first().copied().unwrap_or(f64::NAN),
        "median": median,
        "max": v.last().copied().unwrap_or(f64::NAN),
    })
}

fn stats_text(xs: &[f64]) -> String {
    let s = stats(xs);
    format!(
        "min {:.0} / median {:.0} / max {:.0}",
        s["min"].as_f64().unwrap_or(f64::NAN),
        s["median"].as_f64().unwrap_or(f64::NAN),
        s["max"].as_f64().unwrap_or(f64::NAN)
    )
}

/// One headless Chromium session in a chromedriver of its own.
struct Browser {
    client: Client,
    version: String,
    _driver: ProcessGroup,
    _profile: tempfile::TempDir,
}

/// A process started as the leader of its own group; dropping it kills the whole group
/// (chromedriver and every Chromium it started), also when the bench fails half-way.
struct ProcessGroup(Child);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

impl Browser {
    async fn start() -> anyhow::Result<Browser> {
        let chromium = on_path("chromium", "chromium")?;
        let chromedriver = on_path("chromedriver", "chromium-driver")?;
        let version = Command::new(&chromium)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let profile = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = profile.path().join("chromedriver.log");
        let driver = ProcessGroup(
            Command::new(&chromedriver)
                .process_group(0)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("start {}", chromedriver.display()))?,
        );
        let driver_log = || std::fs::read_to_string(&log).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "chromedriver did not listen on {port}; its log:\n{}",
                    driver_log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let user_data = profile.path().join("chromium");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--no-default-browser-check",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-extensions", "--password-store=basic",
                    "--window-size=1280,900", format!("--user-data-dir={}", user_data.display()),
                ],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .with_context(|| {
                format!(
                    "start a Chromium session; chromedriver log:\n{}",
                    driver_log()
                )
            })?;
        Ok(Browser {
            client,
            version,
            _driver: driver,
            _profile: profile,
        })
    }
}

fn on_path(name: &str, package: &str) -> anyhow::Result<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| {
            format!("`{name}` not found on PATH: install the Debian package `{package}`")
        })
}
