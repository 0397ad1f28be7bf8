//! Starts chromedriver + Chromium, drives pages, runs axe-core, and keeps a screenshot and the
//! HTML of every open page when a journey fails.

use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// One Chromium at a time: this machine has two cores.
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn axe_source() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");
    let path = format!("{dir}/node_modules/axe-core/axe.min.js");
    if !std::path::Path::new(&path).exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix", dir])
            .status()
            .expect("npm is needed to install axe-core for the browser tests");
        assert!(status.success(), "npm ci for axe-core failed");
    }
    std::fs::read_to_string(&path).expect("axe-core")
}

pub struct Browser {
    pub client: Client,
    base: String,
    axe: Arc<String>,
}

/// A chromedriver process and its Chromium profile; the journey ends them after any
/// failure has been photographed.
struct Driver {
    client: Client,
    process: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Browser {
    async fn launch(base: &str, axe: Arc<String>) -> (Browser, Driver) {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is required: apt-get install chromium chromium-driver (.ci/run does)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        });
        let client = ClientBuilder::native()
            .capabilities(capabilities.as_object().unwrap().clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session");
        let browser = Browser {
            client: client.clone(),
            base: base.to_owned(),
            axe,
        };
        let driver = Driver {
            client,
            process: driver,
            _profile: profile,
        };
        (browser, driver)
    }

    /// Opens `path` and checks the page with axe.
    pub async fn visit(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
        self.axe().await;
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("no field {css}"));
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("nothing to click at {css}"))
            .click()
            .await
            .unwrap();
    }

    /// Clicks a submit button and checks the page it leads to.
    pub async fn submit(&self, css: &str) {
        self.click(css).await;
        self.axe().await;
    }

    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("no {css}"))
            .text()
            .await
            .unwrap()
    }

    /// The text of `css` once a script has filled it in (it starts empty).
    pub async fn text_once_set(&self, css: &str) -> String {
        let started = std::time::Instant::now();
        loop {
            let text = self.text(css).await;
            if !text.is_empty() || started.elapsed() > std::time::Duration::from_secs(5) {
                return text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn html(&self) -> String {
        self.client.source().await.unwrap()
    }

    pub async fn value(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    pub async fn script(&self, source: &str) -> serde_json::Value {
        self.client.execute(source, vec![]).await.unwrap()
    }

    /// Presses keys on whatever has focus, as a keyboard would.
    pub async fn keys(&self, keys: &str) {
        self.client
            .active_element()
            .await
            .unwrap()
            .send_keys(keys)
            .await
            .unwrap();
    }

    pub async fn focused_id(&self) -> String {
        self.script("return document.activeElement && document.activeElement.id || ''")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs axe-core on the page; fails on any serious or critical violation.
    pub async fn axe(&self) {
        self.client
            .execute(&self.axe, vec![])
            .await
            .expect("inject axe-core");
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] }).then(r => done(
                   r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => v.impact + ' ' + v.id + ': ' + v.help + ' at ' +
                          v.nodes.map(n => n.target.join(' ')).join(', '))));",
                vec![],
            )
            .await
            .expect("run axe-core");
        let violations: Vec<String> = serde_json::from_value(found).unwrap_or_default();
        let path = self.path().await;
        assert!(
            violations.is_empty(),
            "accessibility violations on {path}:\n{}",
            violations.join("\n")
        );
    }
}

/// The browsers of one journey, so a failure can photograph them all.
#[derive(Clone)]
pub struct Journey {
    pub base: String,
    axe: Arc<String>,
    opened: Arc<Mutex<Vec<Driver>>>,
}

impl Journey {
    pub async fn browser(&self) -> Browser {
        let (browser, driver) = Browser::launch(&self.base, self.axe.clone()).await;
        self.opened.lock().unwrap().push(driver);
        browser
    }
}

/// Runs a journey; if it fails, saves each browser's screenshot and HTML under
/// target/browser-artifacts/ before failing the test.
pub async fn run<F, Fut>(name: &str, base: &str, journey: F)
where
    F: FnOnce(Journey) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let _one_at_a_time = ONE_BROWSER_AT_A_TIME.lock().await;
    let journey_state = Journey {
        base: base.to_owned(),
        axe: Arc::new(axe_source()),
        opened: Arc::new(Mutex::new(Vec::new())),
    };
    let outcome = tokio::spawn(journey(journey_state.clone())).await;
    let drivers: Vec<Driver> = std::mem::take(&mut *journey_state.opened.lock().unwrap());
    let clients: Vec<Client> = drivers.iter().map(|d| d.client.clone()).collect();
    if let Err(failure) = outcome {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        for (n, client) in clients.iter().enumerate() {
            if let Ok(png) = client.screenshot().await {
                let _ = std::fs::write(dir.join(format!("{name}-{n}.png")), png);
            }
            if let Ok(html) = client.source().await {
                let _ = std::fs::write(dir.join(format!("{name}-{n}.html")), html);
            }
        }
        eprintln!("browser artifacts saved in {}", dir.display());
        std::panic::resume_unwind(failure.into_panic());
    }
    for client in clients {
        let _ = client.close().await;
    }
    drop(drivers);
}
