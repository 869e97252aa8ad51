//! The dashboard and the widget, in a real browser: tests/browser/*.mjs
//! drive headless Chromium against this test run's stack (the widget on the
//! demo shop, served from its own origin).

use crate::support::stack::{self, ADMIN_PASSWORD};
use crate::support::{marker, wait_until, Admin, Api};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

#[tokio::test]
async fn the_dashboard_shows_a_new_clients_generation() {
    let base = stack::shared().base.clone();
    let artifacts = stack::root().join("target/test-artifacts/dashboard");
    // Screenshots of an earlier run must not pass for this one's.
    let _ = std::fs::remove_dir_all(&artifacts);
    let started = SystemTime::now();
    let output = Command::new("node")
        .arg(stack::root().join("tests/browser/dashboard.mjs"))
        .current_dir(stack::root())
        .env("BASE_URL", &base)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("EMULATOR_URL", stack::emulator().url())
        .env("ARTIFACTS", &artifacts)
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for page in ["01-login", "02-overview", "03-clients-new-key", "04-client", "04b-widget", "04c-keys-and-settings", "05-overview-after", "06-client-deleted"] {
        let path = artifacts.join(format!("{page}.png"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("screenshot {page} missing: {e}"));
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 1000, "screenshot {page} is not a real PNG");
        let written = std::fs::metadata(&path).and_then(|m| m.modified()).unwrap();
        assert!(written >= started, "screenshot {page} is older than this run");
    }
}

/// The demo shop served from its own origin, with settings written for this
/// run: `config.js` (a shop whose key works), `config-quota.js` (a shop
/// whose quota is spent) and `config-token.js` (a shop whose back end hands
/// the widget session tokens, in Spanish whatever the browser's language).
struct DemoShop {
    origin: String,
    server: std::process::Child,
}

impl Drop for DemoShop {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// `settings` are the demo's own (`key`, or `sessionUrl` and `lang`), beside the API and garments.
fn config_js(api: &str, settings: serde_json::Value, emulator: &str) -> String {
    let garments = json!([
        { "name": "Camisa de lino", "price": "39,90 €", "image": format!("{emulator}/samples/garment.png") },
        { "name": "Sudadera", "price": "49,90 €", "image": format!("{emulator}/samples/garment.png?v=2") },
    ]);
    let mut config = json!({ "api": api, "garments": garments });
    config.as_object_mut().unwrap().extend(settings.as_object().unwrap().clone());
    format!("window.TRYON_DEMO = {config};\n")
}

async fn publishable_key(admin: &Admin, body: serde_json::Value) -> String {
    let client = admin.create_client(body).await;
    let created = admin.post(&format!("/admin/clients/{}/keys", client.id)).json(&json!({ "kind": "publishable" })).expect(201).await;
    created["api_key"].as_str().expect("a publishable key").to_string()
}

async fn demo_shop(site: &Path) -> DemoShop {
    let _ = std::fs::remove_dir_all(site);
    std::fs::create_dir_all(site).unwrap();
    for file in ["index.html", "demo.js", "demo.css"] {
        std::fs::copy(stack::root().join("demo").join(file), site.join(file)).unwrap();
    }
    let port = stack::free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let server = Command::new("node")
        .arg(stack::root().join("scripts/demo-server.mjs"))
        .args(["--port", &port.to_string(), "--host", "127.0.0.1", "--dir"])
        .arg(site)
        .stdout(Stdio::null())
        .spawn()
        .expect("node runs the demo server");
    let shop = DemoShop { origin, server };
    wait_until("the demo shop serves", Duration::from_secs(20), || async {
        match reqwest::get(format!("{}/", shop.origin)).await {
            Ok(r) if r.status().is_success() => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    shop
}

#[tokio::test]
async fn a_shopper_tries_a_garment_on_through_the_widget_on_a_shop_page() {
    let base = stack::shared().base.clone();
    let emulator = stack::emulator().url();
    let out = stack::root().join("target/test-artifacts/widget");
    let artifacts = out.join("screens");
    let site = out.join("site");
    let shop = demo_shop(&site).await;
    let admin = Api::shared().login().await;
    let origins = json!([shop.origin]);
    let key = publishable_key(&admin, json!({ "name": format!("Tienda {}", marker()), "allowed_origins": origins })).await;
    let spent = publishable_key(&admin, json!({ "name": format!("Sin cupo {}", marker()), "allowed_origins": origins, "usage_limit": 0 })).await;
    // The token shop's secret key goes to the browser test, which plays the shop's back end.
    let with_back_end = admin.create_client(json!({ "name": format!("Tienda con sesión {}", marker()), "allowed_origins": origins })).await;
    std::fs::write(site.join("config.js"), config_js(&base, json!({ "key": key }), &emulator)).unwrap();
    std::fs::write(site.join("config-quota.js"), config_js(&base, json!({ "key": spent }), &emulator)).unwrap();
    let token_settings = json!({ "sessionUrl": "/tryon/session", "lang": "es" });
    std::fs::write(site.join("config-token.js"), config_js(&base, token_settings, &emulator)).unwrap();
    let person = out.join("person.png");
    let bytes = reqwest::get(format!("{emulator}/samples/person.png")).await.unwrap().bytes().await.unwrap();
    std::fs::write(&person, &bytes).unwrap();

    let started = SystemTime::now();
    let run = Command::new("node")
        .arg(stack::root().join("tests/browser/widget.mjs"))
        .current_dir(stack::root())
        .env("API_BASE", &base)
        .env("DEMO_URL", format!("{}/", shop.origin))
        .env("EXPECT_QUOTA_MESSAGE_URL", format!("{}/?config=config-quota.js", shop.origin))
        .env("TOKEN_SHOP_URL", format!("{}/?config=config-token.js", shop.origin))
        .env("SECRET_KEY", &with_back_end.key)
        .env("PERSON_IMAGE", &person)
        .env("ARTIFACTS", &artifacts)
        .output()
        .expect("node runs");
    assert!(
        run.status.success(),
        "widget browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let shots: Vec<_> = std::fs::read_dir(&artifacts).unwrap().map(|e| e.unwrap().path()).collect();
    for name in ["shop-phone", "picker-es", "result-es", "history-es", "quota-es", "quota-en", "result-token-es", "history-token-es"] {
        let path = shots.iter().find(|p| p.file_name().unwrap().to_string_lossy().ends_with(&format!("-{name}.png")));
        let path = path.unwrap_or_else(|| panic!("no screenshot of {name} in {shots:?}"));
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 1000, "screenshot {name} is not a real PNG");
        assert!(std::fs::metadata(path).and_then(|m| m.modified()).unwrap() >= started, "screenshot {name} is older than this run");
    }
    drop(shop);
}

#[test]
fn the_widget_script_stays_small() {
    let run = Command::new("node").arg(stack::root().join("tests/browser/widget-size.mjs")).current_dir(stack::root()).output().expect("node runs");
    assert!(run.status.success(), "{}\n{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
}
