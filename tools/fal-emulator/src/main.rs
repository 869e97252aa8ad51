//! `fal-emulator [--port N] [--api-key KEY] [--latency-ms N] [--compose true|false]`

use fal_emulator::{Emulator, EmulatorConfig};

fn usage() -> ! {
    eprintln!("usage: fal-emulator [--port N] [--api-key KEY] [--latency-ms N] [--compose true|false]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut config = EmulatorConfig::default();
    let mut port = 8788u16;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--port" => port = value.parse().unwrap_or_else(|_| usage()),
            "--api-key" => config.api_key = value,
            "--latency-ms" => config.latency_ms = value.parse().unwrap_or_else(|_| usage()),
            "--compose" => config.compose = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let emulator = Emulator::start(config, port).await.unwrap_or_else(|e| {
        eprintln!("fal-emulator: cannot listen on 127.0.0.1:{port}: {e}");
        std::process::exit(1)
    });
    println!("FAL emulator listening on {}", emulator.url());
    let _ = tokio::signal::ctrl_c().await;
}
