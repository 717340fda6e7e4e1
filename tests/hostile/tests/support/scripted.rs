//! For the cases of issue 23's defects: a scripted S3 server (answers chosen per request), for what moto
//! cannot be made to do (a listing that never ends, ids carrying control characters).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// An HTTP server on 127.0.0.1 answering every request with `answer(request head)` = (status, body);
/// stopped on drop.
pub struct ScriptedS3 {
    pub port: u16,
    pub requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

type Answer = dyn Fn(&str) -> (u16, String) + Send + Sync;

impl ScriptedS3 {
    pub fn start(answer: impl Fn(&str) -> (u16, String) + Send + Sync + 'static) -> ScriptedS3 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let answer: Arc<Answer> = Arc::new(answer);
        {
            let (stop, requests) = (stop.clone(), requests.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (answer, requests) = (answer.clone(), requests.clone());
                            thread::spawn(move || serve(stream, &*answer, &requests));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        ScriptedS3 {
            port,
            requests,
            stop,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ScriptedS3 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(mut stream: TcpStream, answer: &Answer, requests: &AtomicUsize) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    // A request body (PUT) is read and ignored.
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    let _ = stream.read_exact(&mut body);
    requests.fetch_add(1, Ordering::SeqCst);
    let (status, text) = answer(&head);
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

/// A ListVersionsResult page holding `versions` (key, version id, last modified) of `key`.
pub fn versions_page(versions: &[(&str, &str, &str)], truncated: Option<(&str, &str)>) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>tfstate</Name><Prefix></Prefix>",
    );
    match truncated {
        Some((key, version)) => xml.push_str(&format!(
            "<IsTruncated>true</IsTruncated><NextKeyMarker>{key}</NextKeyMarker><NextVersionIdMarker>{version}</NextVersionIdMarker>"
        )),
        None => xml.push_str("<IsTruncated>false</IsTruncated>"),
    }
    for (i, (key, id, modified)) in versions.iter().enumerate() {
        xml.push_str(&format!(
            "<Version><Key>{key}</Key><VersionId>{id}</VersionId><IsLatest>{}</IsLatest><LastModified>{modified}</LastModified><ETag>\"e\"</ETag><Size>10</Size></Version>",
            i == 0
        ));
    }
    xml.push_str("</ListVersionsResult>");
    xml
}

/// No output line pretends to come from `tool` saying `ok`, and no escape character is left.
pub fn assert_no_spoof(tool: &str, text: &str) {
    // The payloads these tests inject after a newline; a tool's own `ok:` lines are fine.
    for line in text.lines() {
        for spoof in ["ok: state restored", "ok: lock released", "ok: fake"] {
            assert!(
                !line.starts_with(&format!("{tool}: {spoof}")),
                "a spoofed line: {line:?}\n{text}"
            );
        }
    }
    let control = text.chars().find(|&c| {
        (c.is_control() && c != '\n' && c != '\t') || ('\u{202a}'..='\u{202e}').contains(&c)
    });
    assert!(
        control.is_none(),
        "{control:?} reached the output: {text:?}"
    );
}
