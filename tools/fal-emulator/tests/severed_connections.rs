//! `ResetMidBody` and `CloseWithoutAnswer`: the client must see a network
//! error, never a clean (if short) answer.

mod support;

use fal_emulator::faults::FaultMode;
use fal_emulator::Emulator;
use support::*;
use std::io::{Read, Write};

/// Sends a sync-API call over a bare socket and returns every byte that came back.
async fn raw_call(emulator: &Emulator, marker: &str) -> Vec<u8> {
    let body = try_on_input(emulator, marker).to_string();
    let request = format!(
        "POST /{TRY_ON} HTTP/1.1\r\nhost: {}\r\nauthorization: {KEY}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        emulator.addr,
        body.len()
    );
    let addr = emulator.addr;
    // A plain blocking socket, off the runtime: no HTTP client in between to
    // tidy up what the emulator did to the connection.
    tokio::task::spawn_blocking(move || {
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        socket.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        socket.write_all(request.as_bytes()).unwrap();
        let mut received = Vec::new();
        // A reset may end the read with an error; what arrived before it counts.
        let _ = socket.read_to_end(&mut received);
        received
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn reset_mid_body_sends_headers_and_part_of_the_body_then_drops() {
    let emulator = start().await;
    fault(&emulator, "reset", FaultMode::ResetMidBody, 0, None);
    let response = run(&emulator, &try_on_input(&emulator, "reset")).await.expect("the headers arrive");
    assert_eq!(response.status(), 200);
    let promised: usize = response.headers()["content-length"].to_str().unwrap().parse().unwrap();
    assert!(promised > 0);
    assert!(response.bytes().await.is_err(), "the body is cut short, which the client sees as an error");

    let raw = String::from_utf8_lossy(&raw_call(&emulator, "reset").await).to_string();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a whole head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let declared = head.lines().find_map(|l| l.to_lowercase().strip_prefix("content-length: ").map(|v| v.parse::<usize>().unwrap()));
    assert_eq!(declared, Some(promised));
    assert!(!body.is_empty() && body.len() < promised, "part of the body: {} of {promised} bytes", body.len());
}

#[tokio::test]
async fn close_without_answer_sends_nothing() {
    let emulator = start().await;
    fault(&emulator, "silent", FaultMode::CloseWithoutAnswer, 0, None);
    assert!(run(&emulator, &try_on_input(&emulator, "silent")).await.is_err(), "no response at all");
    assert_eq!(raw_call(&emulator, "silent").await, b"", "not a byte, not even a status line");
    assert_eq!(emulator.requests_matching("silent").len(), 2, "the request itself was received");
}

#[tokio::test]
async fn a_cut_applies_to_the_queue_result_not_the_submission() {
    let emulator = start().await;
    fault(&emulator, "queue-cut", FaultMode::CloseWithoutAnswer, 0, Some(1));
    fault(&emulator, "queue-reset", FaultMode::ResetMidBody, 0, Some(1));
    for marker in ["queue-cut", "queue-reset"] {
        let submitted = submit(&emulator, &try_on_input(&emulator, marker), None).await;
        wait_until_completed(&submitted).await;
        let result_url = submitted["response_url"].as_str().unwrap();
        let first = client().get(result_url).header("authorization", KEY).send().await;
        let first_failed = match first {
            Err(_) => true,
            Ok(response) => response.bytes().await.is_err(),
        };
        assert!(first_failed, "{marker}: the first result fetch is cut");
        let second = json_of(get(result_url).await).await;
        assert!(second["images"][0]["url"].is_string(), "{marker}: `times` ran out, so a retry succeeds");
    }
}
