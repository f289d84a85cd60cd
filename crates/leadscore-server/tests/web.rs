//! The web pages in a real browser: headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`; `.ci/run` installs them)
//! against the real server on a SQLite file. A rep logs in, sees the queue
//! sorted by score, opens a lead, reads why it is hot, fills BANT, changes the
//! status, logs a call and sees the score move; a rep cannot open another
//! rep's lead. Screenshots of each screen go to `target/screenshots/`.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use leadscore_server::web::session::hash_password;
use leadscore_store::accounts::User;
use reqwest::StatusCode;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The spec's model and a call worth 12 points.
fn model() -> String {
    SPEC_MODEL.replace("name = \"b2b-default\"", "name = \"web\"")
        + "\n[[behavior]]\nid = \"call\"\nlabel = \"Call held\"\nevents = [\"call_held\"]\npoints = 12\n"
}

struct Browser {
    http: reqwest::Client,
    url: String,
    driver: Child,
}

impl Drop for Browser {
    /// Ends the session before stopping chromedriver: chromedriver closes
    /// Chromium when its session ends, but killed alone it leaves Chromium
    /// running after the tests. A plain request, as `drop` cannot await.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        if let Some((host, path)) = self.url.strip_prefix("http://").and_then(|r| r.split_once('/'))
            && let Ok(mut conn) = std::net::TcpStream::connect(host)
        {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            if conn.write_all(request.as_bytes()).is_ok() {
                let _ = conn.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session; `None` (loudly)
    /// when they are not installed.
    async fn start() -> Option<Browser> {
        let driver_bin = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(driver_bin) = driver_bin else {
            eprintln!(
                "BROWSER TESTS SKIPPED: chromedriver is not installed (apt-get install chromium chromium-driver)"
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        leadscore_server::install_tls();
        leadscore_server::install_tls();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=en-GB"]
            }
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .unwrap();
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a browser session: {r}"))
            .to_owned();
        Some(Browser {
            http,
            url: format!("{base}/session/{id}"),
            driver,
        })
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let rb = self.http.request(method.clone(), format!("{}{path}", self.url));
        let rb = if method == reqwest::Method::GET {
            rb
        } else {
            rb.json(&body)
        };
        let v: Value = rb.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", json!({"url": url})).await;
    }

    async fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// Waits (up to 20 s) for an element matching `css`.
    async fn find(&self, css: &str) -> Value {
        for _ in 0..200 {
            let v = self
                .cmd(
                    reqwest::Method::POST,
                    "/element",
                    json!({"using": "css selector", "value": css}),
                )
                .await;
            if v.get(ELEMENT).is_some() {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let html = self.js("return document.body.innerText", json!([])).await;
        panic!("no element `{css}` on the page: {html}");
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        let id = e[ELEMENT].as_str().unwrap();
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            json!({"text": text}),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        let id = e[ELEMENT].as_str().unwrap();
        self.cmd(reqwest::Method::POST, &format!("/element/{id}/click"), json!({}))
            .await;
    }

    async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        let id = e[ELEMENT].as_str().unwrap();
        self.cmd(reqwest::Method::GET, &format!("/element/{id}/text"), json!(null))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Sets a form control's value as a person would, with its change event.
    async fn set(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        self.js(
            "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
            json!([e, value]),
        )
        .await;
    }

    /// Signs in on the login page the browser shows.
    async fn sign_in(&self, name: &str) {
        self.type_into("input[name=name]", name).await;
        self.type_into("input[name=password]", "a-long-password-1").await;
        self.click("button[type=submit]").await;
    }

    async fn wait_until(&self, what: &str, script: &str) {
        for _ in 0..200 {
            if self.js(script, json!([])).await == Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}");
    }

    async fn screenshot(&self, name: &str) {
        let png = self.cmd(reqwest::Method::GET, "/screenshot", json!(null)).await;
        let bytes = base64_decode(png.as_str().unwrap());
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()) {
        acc = (acc << 6) | A.iter().position(|a| *a == c).expect("base64") as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The spec's events and four more visits to the pricing page (16 points
/// more): the lead is hot.
async fn make_hot(srv: &Server, id: &str) {
    srv.post("/events/batch", json!(spec_events(id, "h"))).await;
    for i in 0..4 {
        let (s, v) = srv
            .post(
                "/events",
                json!({"id": format!("hx{i}"), "lead": id, "type": "page_viewed", "occurred_at": before_t(1.0), "properties": {"path": "/pricing"}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
}

async fn add_user(srv: &Server, name: &str, role: &str) {
    srv.store
        .accounts()
        .put_user(&User {
            name: name.into(),
            password_hash: hash_password("a-long-password-1").unwrap(),
            role: role.into(),
            locale: "en".into(),
            created_at: t(),
            active: true,
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rep_works_a_hot_lead_in_the_browser() {
    let srv = servers().await.into_iter().next().unwrap();
    let Some(b) = Browser::start().await else { return };
    let (s, v) = srv.post_model(&model()).await;
    assert!(s.is_success(), "{v}");
    srv.activate("web").await;
    add_user(&srv, "an", "rep").await;
    add_user(&srv, "binh", "rep").await;
    for (id, owner) in [("HOT", "an"), ("WARM", "an"), ("COLD", "an"), ("OTHER", "binh")] {
        let mut lead = spec_lead(id);
        lead["owner"] = json!(owner);
        let (s, v) = srv.post("/leads", lead).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    make_hot(&srv, "HOT").await;
    srv.post("/events/batch", json!(spec_events("WARM", "w"))).await;
    let hot = srv.get("/leads/HOT").await.1;
    let before = hot["score"]["score"].as_f64().unwrap();

    // The rep signs in.
    b.goto(&format!("{}/login", srv.base)).await;
    b.screenshot("login").await;
    b.sign_in("an").await;
    b.find("table#leads tbody tr").await;
    // The queue: their three leads, most promising first.
    let ids = b
        .js(
            "return [...document.querySelectorAll('table#leads tbody tr')].map(r => r.dataset.lead)",
            json!([]),
        )
        .await;
    assert_eq!(
        ids,
        json!(["HOT", "WARM", "COLD"]),
        "sorted by score, only the rep's own"
    );
    let why = b.text("table#leads tbody tr:first-child td.why").await;
    assert!(!why.is_empty(), "each row says why in a few words");
    b.screenshot("queue").await;
    // On a phone: the same queue, the optional columns folded away.
    b.cmd(
        reqwest::Method::POST,
        "/window/rect",
        json!({"width": 390, "height": 844}),
    )
    .await;
    let hidden = b
        .js(
            "return getComputedStyle(document.querySelector('table#leads td.opt')).display",
            json!([]),
        )
        .await;
    assert_eq!(hidden, "none", "optional columns fold away on a phone");
    b.screenshot("queue-phone").await;
    b.cmd(
        reqwest::Method::POST,
        "/window/rect",
        json!({"width": 1280, "height": 900}),
    )
    .await;

    // The lead page: why it is hot.
    b.click("table#leads tbody tr:first-child th a").await;
    b.find("#why li").await;
    let why = b.text("#why").await;
    assert!(why.contains("Demo or trial"), "{why}");
    assert_eq!(b.text("#score").await, format!("{before}"));
    b.screenshot("lead").await;

    // BANT: budget yes.
    b.set("#qualification-form select[name=budget]", "yes").await;
    b.set("#qualification-form input[name='budget.fact.amount']", "25000")
        .await;
    b.click("#qualification-form button[type=submit]").await;
    b.find("#live.notice").await;
    let q = srv.get("/leads/HOT/qualification").await.1;
    let budget = q["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "budget")
        .unwrap()
        .clone();
    assert_eq!(budget["answer"], "yes", "{q}");
    assert_eq!(
        budget["facts"]["amount"],
        json!({"amount": 25000.0, "currency": "USD"}),
        "{q}"
    );

    // The status: attempting contact.
    b.set("#status-form select[name=status]", "attempting_contact")
        .await;
    b.click("#status-form button[type=submit]").await;
    b.wait_until("the status to change", "return document.getElementById('status') && document.getElementById('status').textContent === 'attempting contact'").await;
    assert_eq!(srv.get("/leads/HOT").await.1["status"], "attempting_contact");

    // A call: the score moves by the call's points.
    b.set("#activity-form select[name=type]", "call_held").await;
    b.type_into("#activity-form input[name=note]", "Talked budget")
        .await;
    b.click("#activity-form button[type=submit]").await;
    let expected = format!("{}", (before + 12.0).min(100.0));
    b.wait_until(
        "the score to move",
        &format!("return document.getElementById('score') && document.getElementById('score').textContent === '{expected}'"),
    )
    .await;
    let timeline = b.text("#timeline").await;
    assert!(timeline.contains("call · an"), "{timeline}");
    b.screenshot("lead-after-call").await;

    // Another rep's lead is not there for this rep.
    b.goto(&format!("{}/leads/OTHER", srv.base)).await;
    let h1 = b.text("h1").await;
    assert_eq!(h1, "No such lead, or not yours.");
    b.screenshot("not-yours").await;
    srv.stop().await.unwrap();
}

/// Without a session, pages send to the login page and the API says 401;
/// a wrong password is refused; a change without the CSRF token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_csrf_guard_the_pages() {
    let srv = servers().await.into_iter().next().unwrap();
    add_user(&srv, "an", "rep").await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // A form POST, with the cookie and the fetch site given.
    let form = async |path: &str, body: String, cookie: Option<&str>, site: Option<&str>| {
        let mut rb = http
            .post(format!("{}{path}", srv.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(c) = cookie {
            rb = rb.header("cookie", c);
        }
        if let Some(site) = site {
            rb = rb.header("sec-fetch-site", site);
        }
        rb.send().await.unwrap()
    };
    let r = http.get(format!("{}/", srv.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");
    // A sign-in posted from another site is refused.
    let good = "name=an&password=a-long-password-1".to_owned();
    let r = form("/login", good.clone(), None, Some("cross-site")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = form("/login", "name=an&password=wrong-password-x".into(), None, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = form("/login", good, None, Some("same-origin")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Secure"),
        "{cookie}"
    );
    let value = cookie.split(';').next().unwrap().to_owned();
    let page = http
        .get(format!("{}/", srv.base))
        .header("cookie", &value)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from another site"
    );
    // The API with the cookie: reads yes, changes only with the token.
    let r = http
        .get(format!("{}/api/v1/leads", srv.base))
        .header("cookie", &value)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http
        .post(format!("{}/api/v1/leads", srv.base))
        .header("cookie", &value)
        .json(&json!({"id": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Signing out ends the session.
    let csrf = html
        .split("\"csrf\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let r = form("/logout", format!("csrf={csrf}"), Some(&value), None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = http
        .get(format!("{}/api/v1/leads", srv.base))
        .header("cookie", &value)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    srv.stop().await.unwrap();
}

/// Won and lost leads for the model report: 12 decision makers in travel
/// (8 won) and 12 retail clerks (1 won).
fn outcomes_csv() -> String {
    let mut csv = String::from("id,first_name,last_name,email,job_title,industry,outcome,outcome_date\n");
    for i in 0..12 {
        let o = if i < 8 { "won" } else { "lost" };
        csv.push_str(&format!(
            "G{i},Ann,Le,g{i}@travelco.vn,CEO,travel,{o},2026-10-0{}\n",
            1 + i % 9
        ));
        let o = if i < 1 { "won" } else { "lost" };
        csv.push_str(&format!(
            "R{i},Bo,Tran,r{i}@gmail.com,clerk,retail,{o},2026-10-0{}\n",
            1 + i % 9
        ));
    }
    csv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_sees_the_overview_and_marketing_ops_edit_a_model() {
    let srv = servers().await.into_iter().next().unwrap();
    let Some(b) = Browser::start().await else { return };
    srv.activate_spec_model().await;
    add_user(&srv, "maria", "manager").await;
    add_user(&srv, "an", "rep").await;
    add_user(&srv, "root", "admin").await;
    let r = srv
        .req(reqwest::Method::POST, "/leads/import", &srv.admin)
        .header("content-type", "text/csv")
        .body(outcomes_csv())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let mut hot = spec_lead("HOT");
    hot["owner"] = json!("an");
    srv.post("/leads", hot).await;
    make_hot(&srv, "HOT").await;

    let login = async |name: &str| {
        b.goto(&format!("{}/login", srv.base)).await;
        b.sign_in(name).await;
        b.find("nav .who").await;
    };
    // A rep may not see the overview.
    login("an").await;
    b.goto(&format!("{}/overview", srv.base)).await;
    assert_eq!(b.text("h1").await, "This page is not for your role.");
    b.click("nav form[action='/logout'] button").await;
    b.find("input[name=name]").await;

    // The manager's overview, with its charts.
    login("maria").await;
    b.goto(&format!("{}/overview", srv.base)).await;
    b.find("#auc").await;
    let bars = b
        .js(
            "return document.querySelectorAll('svg.bars rect').length",
            json!([]),
        )
        .await;
    assert!(bars.as_u64().unwrap() >= 2, "bar charts drawn: {bars}");
    let untouched = b.text("#untouched").await;
    assert!(
        untouched.contains("An Nguyen"),
        "the hot lead nobody touched: {untouched}"
    );
    let auc = b.text("#auc").await;
    assert!(
        auc.contains("24 leads with an outcome") && auc.contains("ROC AUC"),
        "{auc}"
    );
    let curves = b
        .js(
            "return document.querySelectorAll('#report svg path').length",
            json!([]),
        )
        .await;
    assert!(
        curves.as_u64().unwrap() >= 3,
        "calibration and gains drawn: {curves}"
    );
    b.screenshot("overview").await;
    // In Vietnamese: the words change, the numbers and dates follow vi-VN.
    b.set("nav select[name=locale]", "vi").await;
    b.click("nav form[action='/language'] button").await;
    b.wait_until(
        "the page in Vietnamese",
        "return document.documentElement.lang === 'vi'",
    )
    .await;
    assert_eq!(b.text("h1").await, "Tổng quan");
    b.find("#auc").await;
    b.screenshot("overview-vi").await;
    b.click("nav form[action='/logout'] button").await;
    b.find("input[name=name]").await;

    // Marketing ops: the active model loads; an error is named as they type.
    login("root").await;
    b.goto(&format!("{}/models", srv.base)).await;
    b.wait_until("the model to load", "return document.getElementById('model-toml') && document.getElementById('model-toml').value.includes('b2b-default')").await;
    b.wait_until(
        "the check",
        "return document.getElementById('model-check').textContent.startsWith('Valid')",
    )
    .await;
    b.js(
        "const e = document.getElementById('model-toml'); e.value = e.value.replace('points = 10', 'points = \"ten\"'); e.dispatchEvent(new Event('input'));",
        json!([]),
    )
    .await;
    b.wait_until(
        "the error",
        "return document.getElementById('model-check').className === 'error'",
    )
    .await;
    let msg = b.text("#model-check").await;
    assert!(
        msg.contains("line") || msg.contains(':'),
        "the error says where: {msg}"
    );
    b.screenshot("models").await;
    // The admin page lists users and webhooks.
    b.goto(&format!("{}/admin", srv.base)).await;
    b.find("#users li").await;
    assert!(b.text("#users").await.contains("maria · manager"));
    b.screenshot("admin").await;
    srv.stop().await.unwrap();
}
