//! Compiles the protocol files with a vendored protoc, so the build needs no system protoc.
//! The encoded descriptor set is kept so tests can check the wire shape against the spec.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // The well-known includes (google/protobuf/*.proto) ship with the vendored protoc.
    let well_known = protoc_bin_vendored::include_path()?;
    // Build scripts are single-threaded, so setting the variable races nothing.
    std::env::set_var("PROTOC", protoc);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("descriptors.bin"))
        .compile_protos(
            &[
                PathBuf::from("csi/v1/csi.proto"),
                PathBuf::from("hearth/v1/coordinator.proto"),
                PathBuf::from("kubelet/pluginregistration/v1/api.proto"),
            ],
            &[PathBuf::from("."), well_known],
        )?;
    println!("cargo:rerun-if-changed=csi/v1/csi.proto");
    println!("cargo:rerun-if-changed=hearth/v1/coordinator.proto");
    println!("cargo:rerun-if-changed=kubelet/pluginregistration/v1/api.proto");
    Ok(())
}
