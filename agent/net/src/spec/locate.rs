//! Where a field of the network file is: [`line_of`] finds the line of a path like
//! `routes[3].dev` or `ovn.encapIP` in the YAML text, so that a check made after parsing can
//! name the line as the parser's own errors do. Best effort: block and flow style, one item
//! per line; `None` when it cannot tell.

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(field: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in field.split('.') {
        let (key, rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        for idx in rest.split('[') {
            if let Some(n) = idx
                .trim_end_matches(']')
                .parse()
                .ok()
                .filter(|_| !idx.is_empty())
            {
                out.push(Seg::Index(n));
            }
        }
    }
    out
}

/// One line as the walk sees it: its number, its indent and its content after `- `.
struct Line<'a> {
    indent: usize,
    dash: bool,
    body: &'a str,
}

fn line(text: &str) -> Option<Line<'_>> {
    let body = text.trim_start();
    if body.is_empty() || body.starts_with('#') {
        return None;
    }
    let indent = text.len() - body.len();
    let (dash, body) = match body
        .strip_prefix("- ")
        .or(body.strip_prefix('-').filter(|b| b.is_empty()))
    {
        Some(b) => (true, b.trim_start()),
        None => (false, body),
    };
    Some(Line { indent, dash, body })
}

fn key_of(body: &str) -> Option<&str> {
    let (k, _) = body.split_once(':')?;
    Some(k.trim().trim_matches(|c| c == '"' || c == '\''))
}

/// The 1-based line of `field` in `text`.
pub fn line_of(text: &str, field: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut at: Option<usize> = None; // the line of the segment found last
    let mut parent: Option<usize> = None; // its indent (None: the top level)
    for seg in segments(field) {
        // Inside a flow collection ({...} or [...]) everything else is on that line.
        if let Some(i) = at {
            let body = line(lines[i])?.body;
            let value = body.split_once(':').map_or(body, |(_, v)| v).trim_start();
            if value.starts_with('{') || value.starts_with('[') || body.starts_with('{') {
                return Some(i + 1);
            }
        }
        let start = at.map_or(0, |i| i + 1);
        let inside =
            |l: &Line<'_>| parent.is_none_or(|p| l.indent > p || (l.dash && l.indent == p));
        match seg {
            Seg::Key(k) => {
                // The item's own line holds its first key (`- name: x`).
                if let Some(i) = at.filter(|&i| line(lines[i]).is_some_and(|l| l.dash)) {
                    if key_of(line(lines[i])?.body) == Some(k) {
                        continue;
                    }
                }
                let mut found = None;
                for (i, raw) in lines.iter().enumerate().skip(start) {
                    let Some(l) = line(raw) else { continue };
                    if !inside(&l) {
                        break;
                    }
                    if !l.dash && key_of(l.body) == Some(k) {
                        found = Some((i, l.indent));
                        break;
                    }
                }
                let (i, indent) = found?;
                at = Some(i);
                parent = Some(indent);
            }
            Seg::Index(n) => {
                let mut seen = 0;
                let mut found = None;
                let mut item_indent = None;
                for (i, raw) in lines.iter().enumerate().skip(start) {
                    let Some(l) = line(raw) else { continue };
                    if !inside(&l) {
                        break;
                    }
                    if l.dash && item_indent.is_none_or(|d| d == l.indent) {
                        item_indent = Some(l.indent);
                        if seen == n {
                            found = Some((i, l.indent));
                            break;
                        }
                        seen += 1;
                    }
                }
                let (i, indent) = found?;
                at = Some(i);
                parent = Some(indent);
            }
        }
    }
    at.map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::line_of;

    const TEXT: &str = "\
links:
  - {name: br-ext, kind: bridge}
addresses:
  - {address: 192.0.2.10/24, dev: br-ext}
  - address: 192.0.2.11/24
    # a comment
    dev: eth9
routes:
- dst: 10.0.0.0/8
  multipath: [{via: 192.0.2.1}, {via: 192.0.2.2, dev: eth7}]
interfaceSysctls:
  eth8: {ipv4.rp_filter: \"1\"}
ovn:
  systemId: a
  encapIP: 10.0.0.99
";

    #[test]
    fn fields_are_found_in_block_and_flow_style() {
        assert_eq!(line_of(TEXT, "addresses[0].dev"), Some(4));
        assert_eq!(line_of(TEXT, "addresses[1].dev"), Some(7));
        assert_eq!(line_of(TEXT, "addresses[1].address"), Some(5));
        assert_eq!(line_of(TEXT, "routes[0].multipath[1].dev"), Some(10));
        assert_eq!(line_of(TEXT, "interfaceSysctls.eth8"), Some(12));
        assert_eq!(line_of(TEXT, "ovn.encapIP"), Some(15));
        assert_eq!(line_of(TEXT, "ovn.remote"), None);
        assert_eq!(line_of(TEXT, "addresses[5].dev"), None);
    }
}
