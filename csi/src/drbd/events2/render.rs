//! Renders events back into events2 lines (`Display`), in drbdsetup's field order.
//!
//! Used by tests and fakes that play a drbdsetup; parsing a rendered event gives it back.

use std::fmt::{self, Display, Formatter};

use super::{
    ConnectionEvent, DeviceEvent, Event, Extra, HelperEvent, Line, Object, PathEvent,
    PeerDeviceEvent, ResourceEvent,
};
use crate::drbd::kinds::flag_word;

/// Writes ` key:value` for each present field.
struct Writer<'a, 'b> {
    f: &'a mut Formatter<'b>,
}

impl Writer<'_, '_> {
    fn field(&mut self, key: &str, value: Option<impl Display>) -> fmt::Result {
        match value {
            Some(value) => write!(self.f, " {key}:{value}"),
            None => Ok(()),
        }
    }

    fn flag(&mut self, key: &str, value: Option<bool>) -> fmt::Result {
        self.field(key, value.map(flag_word))
    }

    fn extra(&mut self, extra: &Extra) -> fmt::Result {
        extra
            .iter()
            .try_for_each(|(key, value)| write!(self.f, " {key}:{value}"))
    }
}

impl Display for Line {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::Event(event) => event.fmt(f),
            Self::EndOfInitialState => f.write_str("exists -"),
            Self::Ignored => Ok(()),
        }
    }
}

impl Display for Event {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(timestamp) = &self.timestamp {
            write!(f, "{timestamp} ")?;
        }
        write!(f, "{} ", self.verb)?;
        let mut w = Writer { f };
        match &self.object {
            Object::Resource(ev) => resource(&mut w, ev),
            Object::Device(ev) => device(&mut w, ev),
            Object::Connection(ev) => connection(&mut w, ev),
            Object::PeerDevice(ev) => peer_device(&mut w, ev),
            Object::Path(ev) => path(&mut w, ev),
            Object::Helper(ev) => helper(&mut w, ev),
            Object::Other { kind, fields } => {
                w.f.write_str(kind)?;
                w.extra(fields)
            }
        }
    }
}

fn resource(w: &mut Writer<'_, '_>, ev: &ResourceEvent) -> fmt::Result {
    write!(w.f, "resource name:{}", ev.name)?;
    w.field("role", ev.role.as_ref())?;
    w.field("suspended", ev.suspended.as_ref())?;
    w.flag("force-io-failures", ev.force_io_failures)?;
    w.field("write-ordering", ev.write_ordering.as_ref())?;
    w.flag("may_promote", ev.may_promote)?;
    w.field("promotion_score", ev.promotion_score)?;
    w.field("new_name", ev.new_name.as_ref())?;
    w.extra(&ev.extra)
}

fn device(w: &mut Writer<'_, '_>, ev: &DeviceEvent) -> fmt::Result {
    write!(w.f, "device name:{} volume:{}", ev.name, ev.volume)?;
    w.field("minor", ev.minor)?;
    w.field("backing_dev", ev.backing_dev.as_ref())?;
    w.field("disk", ev.disk.as_ref())?;
    w.flag("client", ev.client)?;
    w.flag("open", ev.open)?;
    w.flag("quorum", ev.quorum)?;
    w.field("size", ev.size_kib)?;
    let st = &ev.stats;
    w.field("read", st.read_kib)?;
    w.field("written", st.written_kib)?;
    w.field("al-writes", st.al_writes)?;
    w.field("bm-writes", st.bm_writes)?;
    w.field("upper-pending", st.upper_pending)?;
    w.field("lower-pending", st.lower_pending)?;
    w.flag("al-suspended", st.al_suspended)?;
    w.field("blocked", st.blocked.as_ref())?;
    w.extra(&ev.extra)
}

fn connection(w: &mut Writer<'_, '_>, ev: &ConnectionEvent) -> fmt::Result {
    write!(
        w.f,
        "connection name:{} peer-node-id:{}",
        ev.name, ev.peer_node_id
    )?;
    w.field("conn-name", ev.conn_name.as_ref())?;
    w.field("connection", ev.connection.as_ref())?;
    w.field("role", ev.role.as_ref())?;
    w.flag("congested", ev.congested)?;
    w.field("ap-in-flight", ev.ap_in_flight)?;
    w.field("rs-in-flight", ev.rs_in_flight)?;
    w.extra(&ev.extra)
}

fn peer_device(w: &mut Writer<'_, '_>, ev: &PeerDeviceEvent) -> fmt::Result {
    write!(
        w.f,
        "peer-device name:{} peer-node-id:{}",
        ev.name, ev.peer_node_id
    )?;
    w.field("conn-name", ev.conn_name.as_ref())?;
    write!(w.f, " volume:{}", ev.volume)?;
    w.field("replication", ev.replication.as_ref())?;
    w.field("peer-disk", ev.peer_disk.as_ref())?;
    w.flag("peer-client", ev.peer_client)?;
    w.field("resync-suspended", ev.resync_suspended.as_ref())?;
    let st = &ev.stats;
    w.field("done", st.resync_done_percent)?;
    w.field("received", st.received_kib)?;
    w.field("sent", st.sent_kib)?;
    w.field("out-of-sync", st.out_of_sync_kib)?;
    w.field("pending", st.pending)?;
    w.field("unacked", st.unacked)?;
    w.field("dbdt1", st.resync_rate_mib_s)?;
    w.field("eta", st.resync_eta_secs)?;
    w.extra(&ev.extra)
}

fn path(w: &mut Writer<'_, '_>, ev: &PathEvent) -> fmt::Result {
    write!(
        w.f,
        "path name:{} peer-node-id:{}",
        ev.name, ev.peer_node_id
    )?;
    w.field("conn-name", ev.conn_name.as_ref())?;
    w.field("local", ev.local.as_ref())?;
    w.field("peer", ev.peer.as_ref())?;
    w.flag("established", ev.established)?;
    w.extra(&ev.extra)
}

fn helper(w: &mut Writer<'_, '_>, ev: &HelperEvent) -> fmt::Result {
    write!(w.f, "helper name:{}", ev.name)?;
    w.field("peer-node-id", ev.peer_node_id)?;
    w.field("conn-name", ev.conn_name.as_ref())?;
    w.field("volume", ev.volume)?;
    w.field("helper", ev.helper.as_ref())?;
    w.field("status", ev.status)?;
    w.extra(&ev.extra)
}
