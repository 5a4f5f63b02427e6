//! Applies events2 events to a [`DrbdState`].
//!
//! This module owns the update rules: `exists`/`create`/`change` insert or update an object
//! with the fields the event carries (a `change` may carry only some), `destroy` removes it
//! with everything under it, `rename` moves a resource. Helper calls and unknown verbs or
//! objects leave the model alone. An event for an object whose parent is missing creates the
//! parent. It must not parse text (that is `events2`) or judge health.

use super::events2::{
    self, ConnectionEvent, DeviceEvent, Event, Events2Error, Line, Object, PathEvent,
    PeerDeviceEvent, ResourceEvent,
};
use super::kinds::Verb;
use super::state::{
    Connection, Device, DeviceStatistics, DrbdState, NetPath, PeerDevice, PeerDeviceStatistics,
    Resource,
};

impl DrbdState {
    /// Builds the state from the full output of `drbdsetup events2 --now` (or a prefix of a
    /// stream). `complete` is set when the output holds the `exists -` marker.
    pub fn from_events2(text: &str) -> Result<Self, Events2Error> {
        let mut state = Self::default();
        for line in events2::parse(text)? {
            state.apply(&line);
        }
        Ok(state)
    }

    /// Applies one parsed line.
    pub fn apply(&mut self, line: &Line) {
        match line {
            Line::Event(event) => self.apply_event(event),
            Line::EndOfInitialState => self.complete = true,
            Line::Ignored => {}
        }
    }

    /// Applies one event.
    pub fn apply_event(&mut self, event: &Event) {
        let destroy = match event.verb {
            Verb::Exists | Verb::Create | Verb::Change => false,
            Verb::Destroy => true,
            Verb::Rename => {
                if let Object::Resource(ev) = &event.object {
                    self.rename(ev);
                }
                return;
            }
            Verb::Call | Verb::Response | Verb::Other(_) => return,
        };
        match &event.object {
            Object::Resource(ev) if destroy => {
                self.resources.remove(&ev.name);
            }
            Object::Resource(ev) => self.update_resource(ev),
            Object::Device(ev) if destroy => {
                if let Some(resource) = self.resources.get_mut(&ev.name) {
                    resource.devices.remove(&ev.volume);
                }
            }
            Object::Device(ev) => update_device(self.resource_mut(&ev.name), ev),
            Object::Connection(ev) if destroy => {
                if let Some(resource) = self.resources.get_mut(&ev.name) {
                    resource.connections.remove(&ev.peer_node_id);
                }
            }
            Object::Connection(ev) => {
                let connection = connection_mut(self.resource_mut(&ev.name), ev.peer_node_id);
                update_connection(connection, ev);
            }
            Object::PeerDevice(ev) if destroy => {
                if let Some(connection) = self
                    .resources
                    .get_mut(&ev.name)
                    .and_then(|r| r.connections.get_mut(&ev.peer_node_id))
                {
                    connection.peer_devices.remove(&ev.volume);
                }
            }
            Object::PeerDevice(ev) => {
                let connection = connection_mut(self.resource_mut(&ev.name), ev.peer_node_id);
                update_peer_device(connection, ev);
            }
            Object::Path(ev) => {
                let connection = connection_mut(self.resource_mut(&ev.name), ev.peer_node_id);
                update_path(connection, ev, destroy);
            }
            Object::Helper(_) | Object::Other { .. } => {}
        }
    }

    fn resource_mut(&mut self, name: &str) -> &mut Resource {
        self.resources
            .entry(name.to_owned())
            .or_insert_with(|| Resource {
                name: name.to_owned(),
                ..Resource::default()
            })
    }

    fn update_resource(&mut self, ev: &ResourceEvent) {
        let resource = self.resource_mut(&ev.name);
        if let Some(role) = &ev.role {
            resource.role = role.clone();
        }
        if let Some(suspended) = &ev.suspended {
            resource.suspended = suspension_reasons(suspended);
        }
        merge(&mut resource.may_promote, ev.may_promote);
        merge(&mut resource.promotion_score, ev.promotion_score);
    }

    fn rename(&mut self, ev: &ResourceEvent) {
        let Some(new_name) = &ev.new_name else {
            return;
        };
        let Some(mut resource) = self.resources.remove(&ev.name) else {
            return;
        };
        resource.name.clone_from(new_name);
        for device in resource.devices.values_mut() {
            device.resource.clone_from(new_name);
        }
        self.resources.insert(new_name.clone(), resource);
    }
}

/// `no` means not suspended; otherwise a comma-separated list of reasons.
fn suspension_reasons(word: &str) -> Vec<String> {
    match word {
        "no" | "false" => Vec::new(),
        reasons => reasons.split(',').map(str::to_owned).collect(),
    }
}

/// Overwrites `slot` when the event carries the field.
fn merge<T: Clone>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

fn update_device(resource: &mut Resource, ev: &DeviceEvent) {
    let name = resource.name.clone();
    let device = resource.devices.entry(ev.volume).or_insert_with(|| Device {
        resource: name,
        volume: ev.volume,
        ..Device::default()
    });
    merge(&mut device.minor, ev.minor);
    if let Some(disk) = &ev.disk {
        device.disk = disk.clone();
    }
    if let Some(backing) = &ev.backing_dev {
        device.backing_dev = (backing != "none").then(|| backing.clone());
    }
    if let Some(client) = ev.client {
        device.client = client;
    }
    merge(&mut device.open, ev.open);
    merge(&mut device.quorum, ev.quorum);
    merge(&mut device.size_kib, ev.size_kib);
    merge_device_stats(&mut device.stats, &ev.stats);
}

fn merge_device_stats(into: &mut DeviceStatistics, from: &DeviceStatistics) {
    merge(&mut into.read_kib, from.read_kib);
    merge(&mut into.written_kib, from.written_kib);
    merge(&mut into.al_writes, from.al_writes);
    merge(&mut into.bm_writes, from.bm_writes);
    merge(&mut into.upper_pending, from.upper_pending);
    merge(&mut into.lower_pending, from.lower_pending);
    merge(&mut into.al_suspended, from.al_suspended);
    merge(&mut into.blocked, from.blocked.clone());
}

fn connection_mut(resource: &mut Resource, peer_node_id: u32) -> &mut Connection {
    resource
        .connections
        .entry(peer_node_id)
        .or_insert_with(|| Connection {
            peer_node_id,
            ..Connection::default()
        })
}

fn update_connection(connection: &mut Connection, ev: &ConnectionEvent) {
    merge(&mut connection.name, ev.conn_name.clone());
    if let Some(state) = &ev.connection {
        connection.state = state.clone();
    }
    if let Some(role) = &ev.role {
        connection.peer_role = role.clone();
    }
    merge(&mut connection.congested, ev.congested);
}

fn update_peer_device(connection: &mut Connection, ev: &PeerDeviceEvent) {
    merge(&mut connection.name, ev.conn_name.clone());
    let peer = connection
        .peer_devices
        .entry(ev.volume)
        .or_insert_with(|| PeerDevice {
            volume: ev.volume,
            ..PeerDevice::default()
        });
    if let Some(replication) = &ev.replication {
        peer.replication = replication.clone();
        // `done:` is printed only while a resync runs; a stale percentage would mislead.
        if ev.stats.resync_done_percent.is_none() && !replication.is_resync() {
            peer.stats.resync_done_percent = None;
        }
    }
    if let Some(disk) = &ev.peer_disk {
        peer.peer_disk = disk.clone();
    }
    merge(&mut peer.peer_client, ev.peer_client);
    merge(&mut peer.resync_suspended, ev.resync_suspended.clone());
    merge_peer_stats(&mut peer.stats, &ev.stats);
}

fn merge_peer_stats(into: &mut PeerDeviceStatistics, from: &PeerDeviceStatistics) {
    merge(&mut into.received_kib, from.received_kib);
    merge(&mut into.sent_kib, from.sent_kib);
    merge(&mut into.out_of_sync_kib, from.out_of_sync_kib);
    merge(&mut into.pending, from.pending);
    merge(&mut into.unacked, from.unacked);
    merge(&mut into.resync_done_percent, from.resync_done_percent);
    merge(&mut into.resync_rate_mib_s, from.resync_rate_mib_s);
    merge(&mut into.resync_eta_secs, from.resync_eta_secs);
}

fn update_path(connection: &mut Connection, ev: &PathEvent, destroy: bool) {
    merge(&mut connection.name, ev.conn_name.clone());
    let (Some(local), Some(peer)) = (&ev.local, &ev.peer) else {
        return;
    };
    let index = connection
        .paths
        .iter()
        .position(|p| &p.local == local && &p.peer == peer);
    match (index, destroy) {
        (Some(index), true) => {
            connection.paths.remove(index);
        }
        (None, true) => {}
        (Some(index), false) => {
            if let (Some(path), Some(established)) =
                (connection.paths.get_mut(index), ev.established)
            {
                path.established = established;
            }
        }
        (None, false) => connection.paths.push(NetPath {
            local: local.clone(),
            peer: peer.clone(),
            established: ev.established.unwrap_or(false),
        }),
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
