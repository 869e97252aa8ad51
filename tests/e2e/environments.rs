//! A deployed environment ignores the test conveniences even when they are
//! set: a stack started with `ENVIRONMENT=production` (and `TEST_CLOCK`,
//! `ALLOW_LOOPBACK_IMAGE_URLS` still passed, as by mistake) must behave as
//! production does, and tells nothing of itself (no `x-wasm-memory-bytes`).

use crate::support::stack::{self, StackOptions};
use crate::support::{marker, try_on, Api};
use serde_json::json;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[tokio::test]
async fn a_deployed_environment_ignores_the_test_clock_loopback_images_and_loopback_csp() {
    let production = stack::start(StackOptions { vars: vec![("ENVIRONMENT".into(), "production".into())], ..Default::default() });
    let api = Api::new(&production);
    let admin = api.login().await;

    // The clock cannot be moved: a week "later" the session is still valid.
    let week_later = (now_ms() + 8 * 24 * 3600 * 1000).to_string();
    admin.get("/admin/session").header("x-test-now", &week_later).expect(200).await;

    // Nor does it tell the size of its memory, on any answer.
    for reply in [api.get("/health").send().await, admin.get("/admin/session").send().await, api.get("/api/usage").send().await] {
        assert_eq!(reply.header("x-wasm-memory-bytes"), None, "{}", reply.status);
    }

    // The dashboard loads nothing from loopback.
    let page = api.get("/admin").send().await;
    let csp = page.header("content-security-policy").unwrap().to_string();
    assert!(!csp.contains("127.0.0.1") && !csp.contains("localhost") && !csp.contains("http:"), "{csp}");

    // Loopback image URLs (the emulator's samples) are refused as input...
    let client = admin.new_client().await;
    client.generate(&try_on(&marker())).send().await.assert_error(422, "invalid_image");
    // ...and an http result URL from FAL (the emulator serves its files on
    // loopback) is not passed on to a shopper.
    let png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let body = json!({ "model": "fal-virtual-try-on", "person_image_url": png, "garment_image_urls": [png] });
    client.generate(&body).send().await.assert_error(502, "upstream_malformed_response");
}
