//! Headless Chromium driven over WebDriver (chromedriver + fantoccini) for the dashboard tests.
//!
//! Both binaries come from Debian (`chromium`, `chromium-driver`); a missing one fails the test.
//! Console messages are read through chromedriver's log endpoint (`goog:loggingPrefs`), and
//! Chrome DevTools commands (device emulation, colour scheme) go through its
//! `goog/cdp/execute` endpoint.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

use super::{free_port, require_binary};

/// A chromedriver process and one browser session in it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    pub driver_log: PathBuf,
}

/// A WebDriver command fantoccini has no method for, relative to the session URL.
#[derive(Debug)]
struct SessionCommand {
    method: http::Method,
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for SessionCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (self.method.clone(), Some(self.body.to_string()))
    }
}

/// One console message.
#[derive(Debug, Clone)]
pub struct ConsoleMessage {
    pub level: String,
    pub message: String,
}

impl Browser {
    /// Start chromedriver on a free port and open a headless Chromium window of 1280×900.
    pub async fn start() -> Browser {
        Self::start_with_args(&[]).await
    }

    /// Like [`Browser::start`], with extra Chromium flags (e.g. the SPKI of a test
    /// certificate to trust).
    pub async fn start_with_args(extra: &[String]) -> Browser {
        let chromium = require_binary("chromium", "chromium");
        let chromedriver = require_binary("chromedriver", "chromium-driver");
        let profile = tempfile::tempdir().expect("profile dir");
        let port = free_port();
        let driver_log = profile.path().join("chromedriver.log");
        // Its own process group, so Drop can stop chromedriver and every Chromium process it
        // started (they stay in the group) by the group's id, even when a test panics.
        let driver = Command::new(&chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", driver_log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        super::lb::wait_port(port, "chromedriver", || {
            std::fs::read_to_string(&driver_log).unwrap_or_default()
        });
        let user_data = profile.path().join("chromium");
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--password-store=basic".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", user_data.display()),
        ];
        args.extend(extra.iter().cloned());
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": args,
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start a Chromium session: {e}\nchromedriver log:\n{}",
                    std::fs::read_to_string(&driver_log).unwrap_or_default()
                )
            });
        Browser {
            client,
            driver,
            _profile: profile,
            driver_log,
        }
    }

    /// Console messages since the last call (chromedriver empties its buffer on read).
    pub async fn console(&self) -> Vec<ConsoleMessage> {
        let v = self
            .client
            .issue_cmd(SessionCommand {
                method: http::Method::POST,
                path: "se/log",
                body: json!({ "type": "browser" }),
            })
            .await
            .expect("read the browser console log");
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|e| ConsoleMessage {
                        level: e["level"].as_str().unwrap_or("").to_string(),
                        message: e["message"].as_str().unwrap_or("").to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Errors (level SEVERE) on the console since the last read.
    pub async fn console_errors(&self) -> Vec<String> {
        self.console()
            .await
            .into_iter()
            .filter(|m| m.level == "SEVERE")
            .map(|m| m.message)
            .collect()
    }

    /// A Chrome DevTools Protocol command.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.client
            .issue_cmd(SessionCommand {
                method: http::Method::POST,
                path: "goog/cdp/execute",
                body: json!({ "cmd": cmd, "params": params }),
            })
            .await
            .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"))
    }

    /// Render as a phone (390×844 CSS pixels, mobile viewport) or as a 1280×900 desktop.
    pub async fn phone(&self, on: bool) {
        let (width, height, mobile, scale) = if on {
            (390, 844, true, 2)
        } else {
            (1280, 900, false, 1)
        };
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile }),
        )
        .await;
    }

    /// Emulate `prefers-color-scheme: dark` (or go back to the default, light).
    pub async fn dark(&self, on: bool) {
        let value = if on { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": value }] }),
        )
        .await;
    }

    /// Save a PNG of the viewport to `target/screenshots/NAME.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let png = self.client.screenshot().await.expect("screenshot");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Save the whole page, not just the viewport, to `target/screenshots/NAME.png`: the
    /// viewport is stretched to the page's height for the shot, then put back.
    pub async fn screenshot_full(&self, name: &str, phone: bool) -> PathBuf {
        let height = self
            .client
            .execute("return document.documentElement.scrollHeight", vec![])
            .await
            .expect("page height")
            .as_u64()
            .unwrap_or(900)
            .min(8000);
        let (width, mobile, scale) = if phone {
            (390, true, 2)
        } else {
            (1280, false, 1)
        };
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile }),
        )
        .await;
        let path = self.screenshot(name).await;
        self.phone(phone).await;
        path
    }

    /// Text of the first element matching `css`, or `None`.
    pub async fn text(&self, css: &str) -> Option<String> {
        let el = self.client.find(fantoccini::Locator::Css(css)).await.ok()?;
        el.text().await.ok()
    }

    /// Wait up to `timeout` for an element matching `css` whose text satisfies `ok`.
    pub async fn wait_text(
        &self,
        css: &str,
        timeout: Duration,
        what: &str,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(t) = self.text(css).await
                && ok(&t)
            {
                return t;
            }
            if std::time::Instant::now() > deadline {
                let source = self.client.source().await.unwrap_or_default();
                panic!(
                    "timed out after {timeout:?} waiting for {what} (`{css}`); last text {:?}\npage:\n{}",
                    self.text(css).await,
                    &source[..source.len().min(4000)]
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// End the browser session cleanly (Chromium exits), then chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}
