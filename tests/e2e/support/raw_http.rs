//! HTTP at the byte level, for what reqwest will not send or serve: a
//! chunked upload with no declared length that goes on and on, and a
//! third party that answers with an endless chunked body.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CHUNK: usize = 64 * 1024;

/// What an endless upload got back, and how much had been sent by then.
#[derive(Debug)]
pub struct UploadAnswer {
    pub status: u16,
    /// What had arrived of the answer when its status line was read.
    pub head: String,
    pub sent_when_answered: usize,
}

/// POSTs `path` a chunked body (no Content-Length) of up to `planned`
/// bytes, while reading the answer; stops sending once it arrives.
pub async fn chunked_upload(base: &str, path: &str, headers: &[(&str, &str)], planned: usize) -> UploadAnswer {
    let host = base.trim_start_matches("http://").to_string();
    let stream = TcpStream::connect(&host).await.expect("the worker accepts connections");
    let (mut reader, mut writer) = stream.into_split();
    let sent = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicBool::new(false));
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let (sent_w, answered_w) = (sent.clone(), answered.clone());
    let writing = tokio::spawn(async move {
        if writer.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b'a'; CHUNK];
        let frame = [format!("{CHUNK:x}\r\n").into_bytes(), chunk, b"\r\n".to_vec()].concat();
        while sent_w.load(Ordering::SeqCst) < planned && !answered_w.load(Ordering::SeqCst) {
            if writer.write_all(&frame).await.is_err() {
                return;
            }
            sent_w.fetch_add(CHUNK, Ordering::SeqCst);
        }
        let _ = writer.write_all(b"0\r\n\r\n").await;
    });
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let status = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let n = reader.read(&mut byte).await.unwrap_or(0);
            if n == 0 {
                return 0;
            }
            buf.extend_from_slice(&byte[..n]);
            if let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                // A little of the body too, for the failure message.
                let n = tokio::time::timeout(Duration::from_millis(200), reader.read(&mut byte)).await.ok().and_then(Result::ok).unwrap_or(0);
                buf.extend_from_slice(&byte[..n]);
                let line = String::from_utf8_lossy(&buf[..head_end]).to_string();
                return line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            }
        }
    })
    .await
    .unwrap_or(0);
    let sent_when_answered = sent.load(Ordering::SeqCst);
    let head = String::from_utf8_lossy(&buf).chars().take(600).collect();
    answered.store(true, Ordering::SeqCst);
    writing.abort();
    UploadAnswer { status, head, sent_when_answered }
}

/// A third party that answers every request with a 200 whose chunked body
/// never ends (up to 256 MiB); it counts what its client took.
pub struct EndlessServer {
    pub url: String,
    taken: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
}

impl EndlessServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let taken = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (counter, accepted) = (taken.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 8192];
                    let _ = socket.read(&mut request).await;
                    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let frame = [format!("{CHUNK:x}\r\n").into_bytes(), vec![b' '; CHUNK], b"\r\n".to_vec()].concat();
                    for _ in 0..(256 * 1024 * 1024 / CHUNK) {
                        if socket.write_all(&frame).await.is_err() {
                            return;
                        }
                        counter.fetch_add(CHUNK, Ordering::SeqCst);
                    }
                });
            }
        });
        Self { url, taken, connections }
    }

    /// Requests (connections) received so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Bytes written to clients so far (what a client read, plus what sat in
    /// socket buffers when it stopped).
    pub fn taken(&self) -> usize {
        self.taken.load(Ordering::SeqCst)
    }
}
