//! `NonImageResult`, `HugeResult`, `ChunkedResult` and `ResultGone`: the output JSON is what
//! FAL returns, and only the file behind `images[0].url` is wrong.

mod support;

use fal_emulator::faults::FaultMode;
use fal_emulator::Emulator;
use serde_json::Value;
use support::*;

/// Runs the sync API for `marker` and returns its (normal-looking) output.
async fn output_for(emulator: &Emulator, marker: &str) -> Value {
    let response = run(emulator, &try_on_input(emulator, marker)).await.unwrap();
    assert_eq!(response.status(), 200);
    let output = json_of(response).await;
    assert_eq!(output["images"][0]["content_type"], "image/png");
    assert!(output["images"][0]["width"].as_u64().unwrap() > 0);
    output
}

fn image_url(output: &Value) -> &str {
    output["images"][0]["url"].as_str().unwrap()
}

#[tokio::test]
async fn a_non_image_result_is_an_html_page_labelled_png() {
    let emulator = start().await;
    fault(&emulator, "html", FaultMode::NonImageResult, 0, None);
    let output = output_for(&emulator, "html").await;
    let file = client().get(image_url(&output)).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "image/png");
    let bytes = file.bytes().await.unwrap();
    assert!(bytes.starts_with(b"<!doctype html>"));
    assert!(image::load_from_memory(&bytes).is_err(), "not an image, whatever its label says");
}

#[tokio::test]
async fn a_huge_result_has_the_size_given_in_delay_ms() {
    let emulator = start().await;
    fault(&emulator, "big", FaultMode::HugeResult, 200_000, None);
    let started = std::time::Instant::now();
    let output = output_for(&emulator, "big").await;
    assert!(started.elapsed().as_secs() < 5, "the size is not also a delay");
    let file = client().get(image_url(&output)).send().await.unwrap();
    assert_eq!(file.headers()["content-length"], "200000");
    let bytes = file.bytes().await.unwrap();
    assert_eq!(bytes.len(), 200_000);
    assert_eq!(image::guess_format(&bytes).unwrap(), image::ImageFormat::Png);
}

#[tokio::test]
async fn a_huge_result_is_30_mib_by_default() {
    let emulator = start().await;
    fault(&emulator, "default-big", FaultMode::HugeResult, 0, None);
    let output = output_for(&emulator, "default-big").await;
    let mut file = client().get(image_url(&output)).send().await.unwrap();
    assert_eq!(file.headers()["content-length"], (30 * 1024 * 1024).to_string().as_str());
    let first = file.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"\x89PNG\r\n\x1a\n"), "the header comes first; the test need not read the rest");
}

#[tokio::test]
async fn a_chunked_result_is_sent_without_a_content_length() {
    let emulator = start().await;
    fault(&emulator, "chunked", FaultMode::ChunkedResult, 200_000, None);
    let output = output_for(&emulator, "chunked").await;
    let file = client().get(image_url(&output)).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert!(file.headers().get("content-length").is_none(), "{:?}", file.headers());
    assert_eq!(file.headers()["transfer-encoding"], "chunked");
    let bytes = file.bytes().await.unwrap();
    assert_eq!(bytes.len(), 200_000);
    assert_eq!(image::guess_format(&bytes).unwrap(), image::ImageFormat::Png);
}

#[tokio::test]
async fn a_gone_result_answers_404() {
    let emulator = start().await;
    fault(&emulator, "gone", FaultMode::ResultGone, 0, None);
    let output = output_for(&emulator, "gone").await;
    assert!(image_url(&output).starts_with(&format!("{}/files/", emulator.url())));
    assert_eq!(client().get(image_url(&output)).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn the_queue_result_file_is_spoiled_too() {
    let emulator = start().await;
    fault(&emulator, "queued-gone", FaultMode::ResultGone, 0, None);
    let submitted = submit(&emulator, &try_on_input(&emulator, "queued-gone"), None).await;
    wait_until_completed(&submitted).await;
    let output = json_of(get(submitted["response_url"].as_str().unwrap()).await).await;
    assert_eq!(client().get(image_url(&output)).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn without_a_fault_the_result_file_is_a_png() {
    let emulator = start().await;
    let output = output_for(&emulator, "healthy").await;
    let bytes = client().get(image_url(&output)).send().await.unwrap().bytes().await.unwrap();
    assert!(image::load_from_memory(&bytes).is_ok());
}
