//! Upload and download from the web terminal page (Teleport's endpoint):
//! `GET` (download) and `POST` (upload) `/webapi/sites/<site>/nodes/<server>/<login>/scp`
//! `?location=<path>&filename=<name>`, with the session cookie and its bearer token.
//!
//! The proxy reaches the node as the terminal does (inside the process, with the session's
//! certificate, through the leaf's tunnel for a leaf's node) and speaks SFTP to it, so the node
//! decides as for `tsh scp`: its `ssh_file_copy` switch and the mapped roles, files as the login,
//! the same audit events. Bytes stream through; nothing is held whole in memory.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode as SftpCode};
use serde::Deserialize;
use shared::error::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use shared::sshclient::sftp_path;

use super::{WebApi, WebState};
use crate::api::{ApiError, ApiResult};

/// `?location=...&filename=...`.
#[derive(Debug, Deserialize)]
pub struct FileQuery {
    /// Download: the file's path. Upload: the directory it goes to (or the full path when no
    /// file name is given).
    #[serde(default)]
    location: String,
    /// The file's name (upload: created in `location`; download: the name the browser saves).
    #[serde(default)]
    filename: String,
}

/// Bytes read per SFTP read and sent per chunk of the response.
const CHUNK: usize = 255 * 1024;

fn sftp_error(path: &str, e: &russh_sftp::client::error::Error) -> Error {
    match e {
        russh_sftp::client::error::Error::Status(s) => {
            let text = format!("{path}: {}", if s.error_message.is_empty() { s.status_code.to_string() } else { s.error_message.clone() });
            match s.status_code {
                SftpCode::NoSuchFile => Error::not_found(text),
                SftpCode::PermissionDenied => Error::access_denied(text),
                _ => Error::bad_parameter(text),
            }
        }
        other => Error::connection_problem(format!("{path}: {other}")),
    }
}

/// The node's SFTP session for the signed-in user, and the connections that carry it.
async fn open(
    s: &WebState,
    sess: &mut super::WebSession,
    site: &str,
    server: &str,
    login: &str,
) -> ApiResult<(shared::sshclient::ProxyConn, shared::sshclient::NodeConn, russh_sftp::client::SftpSession)> {
    let (proxy, node) = super::terminal::reach(s, sess, site, server, login).await.map_err(|e| ApiError(Error::connection_problem(e)))?;
    match node.sftp().await {
        Ok(sftp) => Ok((proxy, node, sftp)),
        Err(e) => {
            node.close().await;
            proxy.close().await;
            // The node's own words: a refusal names the role or switch.
            Err(ApiError(Error::access_denied(format!("{e:#}"))))
        }
    }
}

/// The name a download is saved as, for `Content-Disposition` (URL-escaped, as Teleport does).
fn attachment(name: &str) -> String {
    format!("attachment;filename=\"{}\"", shared::sso::query_escape(name))
}

/// `GET .../scp`: the file at `location`, streamed.
pub async fn download(
    State(s): State<Arc<WebState>>,
    WebApi(mut sess): WebApi,
    Path((site, server, login)): Path<(String, String, String)>,
    Query(q): Query<FileQuery>,
) -> ApiResult<Response> {
    if q.location.trim().is_empty() {
        return Err(ApiError(Error::bad_parameter("give the file to download as ?location=<path>")));
    }
    let asked = q.location.trim().to_string();
    let q = FileQuery { location: sftp_path(q.location.trim()), filename: q.filename };
    let (proxy, node, sftp) = open(&s, &mut sess, &site, &server, &login).await?;
    let meta = match sftp.metadata(q.location.as_str()).await {
        Ok(m) => m,
        Err(e) => {
            node.close().await;
            proxy.close().await;
            return Err(ApiError(sftp_error(&asked, &e)));
        }
    };
    if meta.is_dir() {
        node.close().await;
        proxy.close().await;
        return Err(ApiError(Error::bad_parameter(format!("{asked} is a directory: download files one by one, or use tsh scp -r"))));
    }
    let mut file = match sftp.open(q.location.as_str()).await {
        Ok(f) => f,
        Err(e) => {
            node.close().await;
            proxy.close().await;
            return Err(ApiError(sftp_error(&asked, &e)));
        }
    };
    let name = if q.filename.is_empty() { q.location.rsplit('/').next().unwrap_or("download").to_string() } else { q.filename.clone() };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(Ok(bytes::Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            }
        }
        let _ = file.shutdown().await;
        let _ = sftp.close().await;
        node.close().await;
        proxy.close().await;
    });
    let mut resp = Body::new(Chunks(rx)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/octet-stream"));
    if let Some(len) = meta.size
        && let Ok(v) = header::HeaderValue::from_str(&len.to_string())
    {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if let Ok(v) = header::HeaderValue::from_str(&attachment(&name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// `POST .../scp`: the request body becomes `location/filename` on the node (mode 0644, or the
/// login's umask narrower), written as the login.
pub async fn upload(
    State(s): State<Arc<WebState>>,
    WebApi(mut sess): WebApi,
    Path((site, server, login)): Path<(String, String, String)>,
    Query(q): Query<FileQuery>,
    body: Body,
) -> ApiResult<Response> {
    if q.filename.contains('/') || q.filename == "." || q.filename == ".." {
        return Err(ApiError(Error::bad_parameter(format!("{:?} is not a file name", q.filename))));
    }
    let location = sftp_path(q.location.trim());
    let path = match (location.trim_end_matches('/'), q.filename.as_str()) {
        (".", "") | ("", "") => return Err(ApiError(Error::bad_parameter("give ?location=<directory>&filename=<name>"))),
        ("", f) => f.to_string(),
        (l, "") => l.to_string(),
        (l, f) => format!("{l}/{f}"),
    };
    let (proxy, node, sftp) = open(&s, &mut sess, &site, &server, &login).await?;
    let result = async {
        if sftp.metadata(path.as_str()).await.map(|m| m.is_dir()).unwrap_or(false) {
            return Err(Error::bad_parameter(format!(
                "{path} is a directory: give the file's name (uploading directories needs tsh scp -r)"
            )));
        }
        let attrs = FileAttributes { permissions: Some(0o644), ..FileAttributes::empty() };
        let mut file = sftp
            .open_with_flags_and_attributes(path.as_str(), OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE, attrs)
            .await
            .map_err(|e| sftp_error(&path, &e))?;
        let mut body = body;
        let mut written: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::bad_parameter(format!("reading the upload: {e}")))?;
            if let Ok(data) = frame.into_data() {
                file.write_all(&data).await.map_err(|e| Error::connection_problem(format!("{path}: {e}")))?;
                written += data.len() as u64;
            }
        }
        file.shutdown().await.map_err(|e| Error::connection_problem(format!("{path}: {e}")))?;
        Ok(written)
    }
    .await;
    let _ = sftp.close().await;
    node.close().await;
    proxy.close().await;
    let written = result.map_err(ApiError)?;
    Ok((StatusCode::OK, axum::Json(serde_json::json!({"path": path, "size": written}))).into_response())
}

/// A response body fed by a task.
struct Chunks(tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>);

impl http_body::Body for Chunks {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|r| r.map(http_body::Frame::data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_are_named_as_teleport_names_them() {
        assert_eq!(attachment("report 1.pdf"), "attachment;filename=\"report%201.pdf\"");
        assert_eq!(attachment("a\"b"), "attachment;filename=\"a%22b\"");
    }
}
