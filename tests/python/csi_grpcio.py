"""Drives a CSI socket with the official Python gRPC client (grpcio, the C-core stack shared
with C++, Ruby and PHP), default channel options: Identity, Controller and Node calls, and one
refused call whose code must come through. Stubs are generated from the repository's csi.proto
with grpcio-tools into a scratch directory. Prints one JSON object.

usage: csi_grpcio.py SOCKET PROTO_DIR SCRATCH_DIR STAGING_PATH
"""
import json
import os
import sys

import grpc
import grpc_tools
from grpc_tools import protoc

socket, proto_dir, scratch, staging = sys.argv[1:5]
wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
rc = protoc.main(["protoc", "-I" + proto_dir, "-I" + wkt, "--python_out=" + scratch,
                  "--grpc_python_out=" + scratch, os.path.join(proto_dir, "csi.proto")])
if rc != 0:
    raise SystemExit("grpc_tools.protoc failed: %d" % rc)
sys.path.insert(0, scratch)
import csi_pb2 as csi  # noqa: E402
import csi_pb2_grpc as rpc  # noqa: E402

out = {}
with grpc.insecure_channel("unix://" + socket) as channel:
    identity = rpc.IdentityStub(channel)
    controller = rpc.ControllerStub(channel)
    node = rpc.NodeStub(channel)
    info = identity.GetPluginInfo(csi.GetPluginInfoRequest(), timeout=10)
    out["name"] = info.name
    out["probe_ready"] = identity.Probe(csi.ProbeRequest(), timeout=10).ready.value
    caps = identity.GetPluginCapabilities(csi.GetPluginCapabilitiesRequest(), timeout=10)
    out["plugin_capabilities"] = len(caps.capabilities)
    out["node_id"] = node.NodeGetInfo(csi.NodeGetInfoRequest(), timeout=10).node_id
    ncaps = node.NodeGetCapabilities(csi.NodeGetCapabilitiesRequest(), timeout=10)
    out["node_capabilities"] = len(ncaps.capabilities)
    ccaps = controller.ControllerGetCapabilities(
        csi.ControllerGetCapabilitiesRequest(), timeout=10)
    out["controller_capabilities"] = len(ccaps.capabilities)
    cap = csi.VolumeCapability(
        mount=csi.VolumeCapability.MountVolume(fs_type="ext4"),
        access_mode=csi.VolumeCapability.AccessMode(
            mode=csi.VolumeCapability.AccessMode.SINGLE_NODE_WRITER))
    vol = controller.CreateVolume(csi.CreateVolumeRequest(
        name="pvc-grpcio", capacity_range=csi.CapacityRange(required_bytes=16 << 20),
        volume_capabilities=[cap]), timeout=30).volume
    out["capacity_bytes"] = vol.capacity_bytes
    listed = controller.ListVolumes(csi.ListVolumesRequest(), timeout=10)
    out["listed"] = [e.volume.volume_id == vol.volume_id for e in listed.entries]
    try:
        node.NodeStageVolume(csi.NodeStageVolumeRequest(
            volume_id="vol-missing", staging_target_path=staging, volume_capability=cap),
            timeout=10)
        out["missing_stage"] = "OK"
    except grpc.RpcError as e:
        out["missing_stage"] = e.code().name
    controller.DeleteVolume(csi.DeleteVolumeRequest(volume_id=vol.volume_id), timeout=30)
    out["deleted"] = True
print(json.dumps(out))
