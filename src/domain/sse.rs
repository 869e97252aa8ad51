//! Server-Sent Events, both ways: writing our job status stream, and reading
//! FAL's status stream (`data:` lines, blank-line separated, `:` comments).

/// One event: `id:` (its version), `event:` (its name), `data:` (one line of JSON).
pub fn event(id: u64, name: &str, data: &str) -> String {
    // `data` is one JSON line: serde_json never writes raw newlines.
    format!("id: {id}\nevent: {name}\ndata: {data}\n\n")
}

/// A comment line: keeps proxies and browsers from timing the stream out.
pub fn keep_alive() -> &'static str {
    ": keep-alive\n\n"
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Reads events out of chunks as they arrive; a chunk may end mid-line.
#[derive(Debug, Default)]
pub struct SseReader {
    pending: String,
    current: SseEvent,
    has_data: bool,
}

/// A stream that sends one enormous line is not FAL's status stream.
const MAX_PENDING: usize = 1 << 20;

impl SseReader {
    /// Feeds `chunk`; returns the events it completed. Errs if a line grows
    /// past a sane size (the reader then stops).
    pub fn push(&mut self, chunk: &str) -> Result<Vec<SseEvent>, String> {
        self.pending.push_str(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if self.has_data {
                    out.push(std::mem::take(&mut self.current));
                }
                self.current = SseEvent::default();
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
            match field {
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    self.has_data = true;
                }
                "id" => self.current.id = Some(value.to_string()),
                "event" => self.current.event = Some(value.to_string()),
                _ => {}
            }
        }
        if self.pending.len() > MAX_PENDING {
            return Err("an event line is longer than 1 MiB".into());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_written_as_one_block_each() {
        assert_eq!(event(3, "done", r#"{"id":"job_1"}"#), "id: 3\nevent: done\ndata: {\"id\":\"job_1\"}\n\n");
    }

    #[test]
    fn events_are_read_across_chunk_boundaries_and_comments_skipped() {
        let mut r = SseReader::default();
        assert!(r.push("data: {\"status\":\"IN_QU").unwrap().is_empty());
        let got = r.push("EUE\"}\n\n: keep-alive\n\ndata: {\"status\":\"COMPLETED\"}\r\n\r\n").unwrap();
        assert_eq!(got.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(), vec![r#"{"status":"IN_QUEUE"}"#, r#"{"status":"COMPLETED"}"#]);
    }

    #[test]
    fn ids_names_and_multiline_data_are_kept() {
        let mut r = SseReader::default();
        let got = r.push("id: 7\nevent: x\ndata: a\ndata: b\n\n").unwrap();
        assert_eq!(got, vec![SseEvent { id: Some("7".into()), event: Some("x".into()), data: "a\nb".into() }]);
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut r = SseReader::default();
        assert!(r.push(&"x".repeat(MAX_PENDING + 1)).is_err());
    }
}
