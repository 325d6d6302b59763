//! The web UI's static files, embedded in the binary, served at content-hashed URLs
//! (`/web/app/<stem>.<hash>.<ext>`) with a year of immutable caching: a new build changes the
//! URL, never what a URL means.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// (name, bytes, content type).
const FILES: &[(&str, &[u8], &str)] = &[
    ("xterm.js", include_bytes!("../../web/vendor/xterm.js"), "text/javascript; charset=utf-8"),
    ("xterm.css", include_bytes!("../../web/vendor/xterm.css"), "text/css; charset=utf-8"),
    ("addon-fit.js", include_bytes!("../../web/vendor/addon-fit.js"), "text/javascript; charset=utf-8"),
    ("terminal.js", include_bytes!("../../web/app/terminal.js"), "text/javascript; charset=utf-8"),
    ("app.js", include_bytes!("../../web/app/app.js"), "text/javascript; charset=utf-8"),
    ("files.js", include_bytes!("../../web/app/files.js"), "text/javascript; charset=utf-8"),
    ("app.css", include_bytes!("../../web/app/app.css"), "text/css; charset=utf-8"),
];

struct Table {
    /// name → hashed URL path.
    urls: HashMap<&'static str, String>,
    /// hashed file name → (bytes, type).
    files: HashMap<String, (&'static [u8], &'static str)>,
}

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        let mut urls = HashMap::new();
        let mut files = HashMap::new();
        for (name, bytes, mime) in FILES {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
            let hash: String = digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
            let hashed = format!("{stem}.{hash}.{ext}");
            urls.insert(*name, format!("/web/app/{hashed}"));
            files.insert(hashed, (*bytes, *mime));
        }
        Table { urls, files }
    })
}

/// The URL of an embedded file.
pub fn url(name: &str) -> String {
    table().urls.get(name).cloned().unwrap_or_else(|| format!("/web/app/{name}"))
}

/// `GET /web/app/<file>`.
pub async fn serve(Path(file): Path<String>) -> Response {
    match table().files.get(&file) {
        Some((bytes, mime)) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, *mime), (header::CACHE_CONTROL, "public, max-age=31536000, immutable")], *bytes)
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], "no such file").into_response(),
    }
}
