//! The two text formats of `/metrics` and the choice between them by `Accept`: OpenMetrics 1.0
//! (what prometheus-client writes) for clients that ask for `application/openmetrics-text`,
//! and the classic Prometheus text format 0.0.4 for every other client. Owns only the
//! conversion; the metric names belong to `metrics` and the coordinator's status module.

/// A `/metrics` answer's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
    /// The Prometheus text format 0.0.4.
    Classic,
}

impl Format {
    /// The Content-Type of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Self::Classic => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// Picks the format for an `Accept` header: OpenMetrics when the client accepts it at least as
/// much as the classic text (by q-value; a bare `*/*` counts for the classic text), the classic
/// text otherwise, and for a missing or unreadable header.
pub fn negotiate(accept: Option<&str>) -> Format {
    let (mut open, mut classic) = (0.0f32, 0.0f32);
    for range in accept.unwrap_or("").split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut q = 1.0f32;
        for param in parts {
            if let Some((k, v)) = param.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
        }
        match media.as_str() {
            "application/openmetrics-text" => open = open.max(q),
            "text/plain" | "text/*" | "*/*" => classic = classic.max(q),
            _ => {}
        }
    }
    if open > 0.0 && open >= classic {
        Format::OpenMetrics
    } else {
        Format::Classic
    }
}

/// Rewrites OpenMetrics text, as prometheus-client writes it, as the classic text format:
/// a counter's HELP and TYPE name its `_total` series, `_created` series, `# UNIT` lines,
/// exemplars and `# EOF` go, `unknown` becomes `untyped`, an `info` family becomes a gauge
/// named `_info`, and HELP drops OpenMetrics' `\"` escape (the classic format escapes only
/// `\\` and `\n`).
pub fn classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // HELP precedes TYPE in OpenMetrics; it is held until the TYPE tells the classic name.
    let mut help: Option<(&str, String)> = None;
    let mut created: Option<String> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, text.replace("\\\"", "\"")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (family, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" => (format!("{family}_total"), "counter"),
                "gauge" | "histogram" | "summary" => (family.to_owned(), kind),
                "info" => (format!("{family}_info"), "gauge"),
                "stateset" => (family.to_owned(), "gauge"),
                _ => (family.to_owned(), "untyped"),
            };
            created = matches!(kind, "counter" | "histogram" | "summary")
                .then(|| format!("{family}_created"));
            if let Some((h, text)) = help.take() {
                if h == family {
                    out.push_str(&format!("# HELP {name} {text}\n"));
                }
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            // `# UNIT`, `# EOF` and any other comment.
            continue;
        }
        let (series, value) = split_sample(line);
        let name = series.split('{').next().unwrap_or("");
        if created.as_deref() == Some(name) {
            continue;
        }
        // An exemplar follows the value after ` # `.
        let value = value.split(" # ").next().unwrap_or(value);
        out.push_str(series);
        out.push_str(value);
        out.push('\n');
    }
    out
}

/// Splits a sample line after its name and label set (a `}` or ` # ` inside a quoted label
/// value does not end it).
fn split_sample(line: &str) -> (&str, &str) {
    let Some(open) = line.find(['{', ' ']) else {
        return (line, "");
    };
    if !line[open..].starts_with('{') {
        return line.split_at(open);
    }
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in line[open..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return line.split_at(open + i + 1),
            _ => {}
        }
    }
    (line, "")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// promtool's findings on `text` (empty when it passes), or `None` when promtool is not
    /// installed (a failure under CI=true, where it must be).
    pub(crate) fn promtool_findings(text: &str) -> Option<String> {
        let child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "promtool is missing (install Debian's prometheus)"
            );
            eprintln!("skipping the promtool check: promtool is not installed");
            return None;
        };
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("feed promtool");
        let out = child.wait_with_output().expect("promtool ran");
        let mut report = String::from_utf8_lossy(&out.stdout).into_owned();
        report.push_str(&String::from_utf8_lossy(&out.stderr));
        if !out.status.success() && report.trim().is_empty() {
            report = format!("promtool exited {}", out.status);
        }
        Some(report.trim().to_owned())
    }

    #[test]
    fn the_node_metrics_in_classic_text_pass_promtool() {
        use crate::health::csi_ops::CsiRecorder;
        use crate::health::snapshot::Snapshot;
        let rec = CsiRecorder::default();
        rec.record(
            "/csi.v1.Node/NodeStageVolume",
            5,
            std::time::Duration::from_millis(2),
        );
        rec.record(
            "/csi.v1.Identity/Probe",
            0,
            std::time::Duration::from_millis(1),
        );
        let om = crate::health::metrics::render(
            std::sync::Arc::new(Snapshot::default()),
            rec.counters(),
        );
        let text = classic(&om);
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        if let Some(findings) = promtool_findings(&text) {
            assert_eq!(findings, "", "{text}");
        }
    }

    #[test]
    fn negotiation_follows_accept() {
        use Format::*;
        for (accept, want) in [
            (None, Classic),
            (Some(""), Classic),
            (Some("*/*"), Classic),
            (Some("text/plain; version=0.0.4"), Classic),
            (Some("application/json"), Classic),
            (Some("application/openmetrics-text"), OpenMetrics),
            (Some("Application/OpenMetrics-Text; version=1.0.0"), OpenMetrics),
            // Prometheus 2.x's scrape header.
            (
                Some("application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
                OpenMetrics,
            ),
            (
                Some("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5"),
                Classic,
            ),
            (Some("application/openmetrics-text;q=0"), Classic),
            (Some("application/openmetrics-text;q=bad"), Classic),
        ] {
            assert_eq!(negotiate(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn counters_units_and_eof_become_classic() {
        let om = "# HELP hearth_csi_operations CSI calls \\\"by method\\\".\n\
# TYPE hearth_csi_operations counter\n\
hearth_csi_operations_total{method=\"/a\"} 1\n\
hearth_csi_operations_created{method=\"/a\"} 1700000000.0\n\
# HELP hearth_volume_size_bytes Size.\n\
# TYPE hearth_volume_size_bytes gauge\n\
# UNIT hearth_volume_size_bytes bytes\n\
hearth_volume_size_bytes{volume=\"v\"} 4096\n\
# HELP hearth_build Build.\n\
# TYPE hearth_build info\n\
hearth_build_info{version=\"1\"} 1\n\
# HELP hearth_x X.\n\
# TYPE hearth_x unknown\n\
hearth_x 2 # {trace=\"t\"} 1\n\
hearth_x{l=\"a } # \\\" b\"} 3\n\
# EOF\n";
        assert_eq!(
            classic(om),
            "# HELP hearth_csi_operations_total CSI calls \"by method\".\n\
# TYPE hearth_csi_operations_total counter\n\
hearth_csi_operations_total{method=\"/a\"} 1\n\
# HELP hearth_volume_size_bytes Size.\n\
# TYPE hearth_volume_size_bytes gauge\n\
hearth_volume_size_bytes{volume=\"v\"} 4096\n\
# HELP hearth_build_info Build.\n\
# TYPE hearth_build_info gauge\n\
hearth_build_info{version=\"1\"} 1\n\
# HELP hearth_x X.\n\
# TYPE hearth_x untyped\n\
hearth_x 2\n\
hearth_x{l=\"a } # \\\" b\"} 3\n"
        );
    }
}
