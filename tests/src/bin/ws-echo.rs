//! A WebSocket echo application for the app-access tests (what a Grafana live view needs of the
//! path: an upgrade that passes through). `ws-echo --listen IP:PORT` prints `ready`, then
//! answers every upgrade on any path and echoes each text or binary message; it writes the
//! request headers it saw, as JSON, as its first message (so a test can check what arrived).

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::result_large_err)]

use std::net::TcpListener;

use tungstenite::handshake::server::{Request, Response};
use tungstenite::{Message, accept_hdr};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen = args.iter().position(|a| a == "--listen").and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| {
        eprintln!("usage: ws-echo --listen IP:PORT");
        std::process::exit(2)
    });
    let listener = TcpListener::bind(&listen).unwrap_or_else(|e| {
        eprintln!("ws-echo: cannot listen on {listen}: {e}");
        std::process::exit(1)
    });
    println!("ready");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let mut seen = serde_json::Map::new();
            let cb = |req: &Request, resp: Response| {
                for (k, v) in req.headers() {
                    seen.insert(k.as_str().to_string(), serde_json::json!(v.to_str().unwrap_or_default()));
                }
                Ok(resp)
            };
            let Ok(mut ws) = accept_hdr(stream, cb) else { return };
            if ws.send(Message::text(serde_json::Value::Object(seen).to_string())).is_err() {
                return;
            }
            while let Ok(m) = ws.read() {
                let echo = matches!(m, Message::Text(_) | Message::Binary(_));
                if matches!(m, Message::Close(_)) || (echo && ws.send(m).is_err()) {
                    return;
                }
            }
        });
    }
}
