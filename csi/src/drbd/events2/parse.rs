//! The events2 line parser: tokens to [`Line`].
//!
//! Owns tokenizing and the key tables per object kind. Pure: no I/O, no panics.

use std::str::FromStr;

use super::{
    excerpt, ConnectionEvent, DeviceEvent, Event, Events2Error, Extra, HelperEvent, Line, Object,
    PathEvent, PeerDeviceEvent, ResourceEvent,
};
use crate::drbd::kinds::{parse_flag, ConnectionState, DiskState, ReplicationState, Role, Verb};

/// Parses the whole output of `drbdsetup events2`, one [`Line`] per input line.
pub fn parse(text: &str) -> Result<Vec<Line>, Events2Error> {
    text.lines()
        .enumerate()
        .map(|(index, line)| parse_line(index + 1, line))
        .collect()
}

/// Parses one line; `number` is its 1-based line number, used in errors.
pub fn parse_line(number: usize, text: &str) -> Result<Line, Events2Error> {
    // ASCII whitespace only, like the token split: a value keeps any other space character.
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(Line::Ignored);
    }
    let mut tokens = trimmed.split_ascii_whitespace().peekable();
    let timestamp = match tokens.peek() {
        Some(first) if first.starts_with(|c: char| c.is_ascii_digit()) => {
            tokens.next().map(str::to_owned)
        }
        _ => None,
    };
    let verb = tokens.next().map(Verb::parse);
    let (Some(verb), Some(kind)) = (verb, tokens.next()) else {
        return Err(Events2Error::SplitObject {
            line: number,
            text: excerpt(text),
        });
    };
    if kind == "-" {
        return match (verb, tokens.next()) {
            (Verb::Exists, None) => Ok(Line::EndOfInitialState),
            _ => Err(Events2Error::Marker {
                line: number,
                text: excerpt(text),
            }),
        };
    }
    let mut fields = Fields::split(number, text, tokens)?;
    let object = match kind {
        "resource" => Object::Resource(resource(&mut fields)?),
        "device" => Object::Device(device(&mut fields)?),
        "connection" => Object::Connection(connection(&mut fields)?),
        "peer-device" => Object::PeerDevice(peer_device(&mut fields)?),
        "path" => Object::Path(path(&mut fields)?),
        "helper" => Object::Helper(helper(&mut fields)?),
        other => Object::Other {
            kind: other.to_owned(),
            fields: fields
                .rest()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        },
    };
    Ok(Line::Event(Event {
        timestamp,
        verb,
        object,
    }))
}

/// The `key:value` fields of one line; identity keys are taken out first.
struct Fields<'a> {
    line: usize,
    text: &'a str,
    pairs: Vec<Option<(&'a str, &'a str)>>,
}

impl<'a> Fields<'a> {
    fn split(
        line: usize,
        text: &'a str,
        tokens: impl Iterator<Item = &'a str>,
    ) -> Result<Self, Events2Error> {
        let pairs = tokens
            .map(|token| {
                token
                    .split_once(':')
                    .map(Some)
                    .ok_or_else(|| Events2Error::SplitField {
                        line,
                        token: excerpt(token),
                        text: excerpt(text),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { line, text, pairs })
    }

    /// Takes the first `key` out of the fields.
    fn take(&mut self, key: &str) -> Option<&'a str> {
        let slot = self
            .pairs
            .iter_mut()
            .find(|p| matches!(p, Some((k, _)) if *k == key))?;
        slot.take().map(|(_, value)| value)
    }

    fn name(&mut self, object: &'static str) -> Result<String, Events2Error> {
        self.take("name")
            .map(str::to_owned)
            .ok_or_else(|| self.missing(object, "name"))
    }

    fn id(&mut self, object: &'static str, key: &'static str) -> Result<u32, Events2Error> {
        match self.optional_id(key)? {
            Some(id) => Ok(id),
            None => Err(self.missing(object, key)),
        }
    }

    fn optional_id(&mut self, key: &'static str) -> Result<Option<u32>, Events2Error> {
        let Some(value) = self.take(key) else {
            return Ok(None);
        };
        value.parse().map(Some).map_err(|_| Events2Error::ParseKey {
            line: self.line,
            key,
            value: excerpt(value),
            text: excerpt(self.text),
        })
    }

    fn missing(&self, object: &'static str, key: &'static str) -> Events2Error {
        Events2Error::MissingKey {
            line: self.line,
            object,
            key,
            text: excerpt(self.text),
        }
    }

    /// The fields not taken, in order.
    fn rest(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.pairs.iter().flatten().copied()
    }
}

/// Keeps a field that is not in the key table, or whose value did not parse.
fn keep(extra: &mut Extra, key: &str, value: &str) {
    extra.push((key.to_owned(), value.to_owned()));
}

fn set_str(slot: &mut Option<String>, value: &str) {
    *slot = Some(value.to_owned());
}

fn set_num<T: FromStr>(slot: &mut Option<T>, extra: &mut Extra, key: &str, value: &str) {
    match value.parse() {
        Ok(number) => *slot = Some(number),
        Err(_) => keep(extra, key, value),
    }
}

fn set_float(slot: &mut Option<f64>, extra: &mut Extra, key: &str, value: &str) {
    match value.parse::<f64>() {
        Ok(number) if number.is_finite() => *slot = Some(number),
        _ => keep(extra, key, value),
    }
}

fn set_flag(slot: &mut Option<bool>, extra: &mut Extra, key: &str, value: &str) {
    match parse_flag(value) {
        Some(flag) => *slot = Some(flag),
        None => keep(extra, key, value),
    }
}

fn resource(fields: &mut Fields<'_>) -> Result<ResourceEvent, Events2Error> {
    let mut ev = ResourceEvent {
        name: fields.name("resource")?,
        ..ResourceEvent::default()
    };
    let x = &mut ev.extra;
    for (key, value) in fields.rest() {
        match key {
            "role" => ev.role = Some(Role::parse(value)),
            "suspended" => set_str(&mut ev.suspended, value),
            "write-ordering" => set_str(&mut ev.write_ordering, value),
            "force-io-failures" => set_flag(&mut ev.force_io_failures, x, key, value),
            "may_promote" => set_flag(&mut ev.may_promote, x, key, value),
            "promotion_score" => set_num(&mut ev.promotion_score, x, key, value),
            "new_name" => set_str(&mut ev.new_name, value),
            _ => keep(x, key, value),
        }
    }
    Ok(ev)
}

fn device(fields: &mut Fields<'_>) -> Result<DeviceEvent, Events2Error> {
    let mut ev = DeviceEvent {
        name: fields.name("device")?,
        volume: fields.id("device", "volume")?,
        minor: fields.optional_id("minor")?,
        ..DeviceEvent::default()
    };
    let (x, st) = (&mut ev.extra, &mut ev.stats);
    for (key, value) in fields.rest() {
        match key {
            "disk" => ev.disk = Some(DiskState::parse(value)),
            "backing_dev" => set_str(&mut ev.backing_dev, value),
            "client" => set_flag(&mut ev.client, x, key, value),
            "open" => set_flag(&mut ev.open, x, key, value),
            "quorum" => set_flag(&mut ev.quorum, x, key, value),
            "size" => set_num(&mut ev.size_kib, x, key, value),
            "read" => set_num(&mut st.read_kib, x, key, value),
            "written" => set_num(&mut st.written_kib, x, key, value),
            "al-writes" => set_num(&mut st.al_writes, x, key, value),
            "bm-writes" => set_num(&mut st.bm_writes, x, key, value),
            "upper-pending" => set_num(&mut st.upper_pending, x, key, value),
            "lower-pending" => set_num(&mut st.lower_pending, x, key, value),
            "al-suspended" => set_flag(&mut st.al_suspended, x, key, value),
            "blocked" => set_str(&mut st.blocked, value),
            _ => keep(x, key, value),
        }
    }
    Ok(ev)
}

fn connection(fields: &mut Fields<'_>) -> Result<ConnectionEvent, Events2Error> {
    let mut ev = ConnectionEvent {
        name: fields.name("connection")?,
        peer_node_id: fields.id("connection", "peer-node-id")?,
        ..ConnectionEvent::default()
    };
    let x = &mut ev.extra;
    for (key, value) in fields.rest() {
        match key {
            "conn-name" => set_str(&mut ev.conn_name, value),
            "connection" => ev.connection = Some(ConnectionState::parse(value)),
            "role" => ev.role = Some(Role::parse(value)),
            "congested" => set_flag(&mut ev.congested, x, key, value),
            "ap-in-flight" => set_num(&mut ev.ap_in_flight, x, key, value),
            "rs-in-flight" => set_num(&mut ev.rs_in_flight, x, key, value),
            _ => keep(x, key, value),
        }
    }
    Ok(ev)
}

fn peer_device(fields: &mut Fields<'_>) -> Result<PeerDeviceEvent, Events2Error> {
    let mut ev = PeerDeviceEvent {
        name: fields.name("peer-device")?,
        peer_node_id: fields.id("peer-device", "peer-node-id")?,
        volume: fields.id("peer-device", "volume")?,
        ..PeerDeviceEvent::default()
    };
    let (x, st) = (&mut ev.extra, &mut ev.stats);
    for (key, value) in fields.rest() {
        match key {
            "conn-name" => set_str(&mut ev.conn_name, value),
            "replication" => ev.replication = Some(ReplicationState::parse(value)),
            "peer-disk" => ev.peer_disk = Some(DiskState::parse(value)),
            "peer-client" => set_flag(&mut ev.peer_client, x, key, value),
            "resync-suspended" => set_str(&mut ev.resync_suspended, value),
            "received" => set_num(&mut st.received_kib, x, key, value),
            "sent" => set_num(&mut st.sent_kib, x, key, value),
            "out-of-sync" => set_num(&mut st.out_of_sync_kib, x, key, value),
            "pending" => set_num(&mut st.pending, x, key, value),
            "unacked" => set_num(&mut st.unacked, x, key, value),
            "done" => set_float(&mut st.resync_done_percent, x, key, value),
            "dbdt1" => set_float(&mut st.resync_rate_mib_s, x, key, value),
            "eta" => set_float(&mut st.resync_eta_secs, x, key, value),
            _ => keep(x, key, value),
        }
    }
    Ok(ev)
}

fn path(fields: &mut Fields<'_>) -> Result<PathEvent, Events2Error> {
    let mut ev = PathEvent {
        name: fields.name("path")?,
        peer_node_id: fields.id("path", "peer-node-id")?,
        ..PathEvent::default()
    };
    let x = &mut ev.extra;
    for (key, value) in fields.rest() {
        match key {
            "conn-name" => set_str(&mut ev.conn_name, value),
            "local" => set_str(&mut ev.local, value),
            "peer" => set_str(&mut ev.peer, value),
            "established" => set_flag(&mut ev.established, x, key, value),
            _ => keep(x, key, value),
        }
    }
    Ok(ev)
}

fn helper(fields: &mut Fields<'_>) -> Result<HelperEvent, Events2Error> {
    let mut ev = HelperEvent {
        name: fields.name("helper")?,
        peer_node_id: fields.optional_id("peer-node-id")?,
        volume: fields.optional_id("volume")?,
        ..HelperEvent::default()
    };
    let x = &mut ev.extra;
    for (key, value) in fields.rest() {
        match key {
            "conn-name" => set_str(&mut ev.conn_name, value),
            "helper" => set_str(&mut ev.helper, value),
            "status" => set_num(&mut ev.status, x, key, value),
            _ => keep(x, key, value),
        }
    }
    Ok(ev)
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
