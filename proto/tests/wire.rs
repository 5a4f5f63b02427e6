//! Checks the compiled `csi.v1` descriptor against the CSI v1.12.0 wire reference.
//!
//! The reference (`shared/reference/csi-v1.12.0-wire.tsv`, next to the checkout) lists every
//! message field, enum value and RPC of upstream `csi.proto`. Every row must match our
//! descriptor, and everything in our `csi.v1` package must appear in the reference. When the
//! reference is absent (a user's machine has no `../shared`) that test prints why and passes.
//!
//! `prost_types` drops unknown fields, so the custom options (`csi_secret` = 1059, the
//! `alpha_*` family = 1060) are read by walking the raw descriptor bytes instead.

#[path = "wire/raw.rs"]
mod raw;

#[cfg(test)]
mod tests {
    use crate::raw::RawFlags;
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use prost::Message;
    use prost_types::field_descriptor_proto::{Label, Type};
    use prost_types::{
        DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet,
    };

    const PACKAGE: &str = "csi.v1";
    const REFERENCE: &str = "../../shared/reference/csi-v1.12.0-wire.tsv";
    const HEADER: [&str; 8] = [
        "kind", "scope", "name", "number", "label", "type", "oneof", "flags",
    ];
    /// The columns after the key (kind, scope, name), in TSV order.
    const VALUE_COLUMNS: [&str; 5] = ["number", "label", "type", "oneof", "flags"];

    /// Rows where the reference disagrees with upstream `csi.proto` and we follow upstream.
    ///
    /// Each entry is checked both ways: the reference must still say `reference` (otherwise the
    /// erratum is stale and must go) and our descriptor must say `ours`.
    struct Erratum {
        kind: &'static str,
        scope: &'static str,
        name: &'static str,
        column: &'static str,
        reference: &'static str,
        ours: &'static str,
    }

    /// `entries` is `repeated Entry entries = 1` upstream (the reference's own rows list the
    /// fields of `ListVolumesResponse.Entry` / `ListSnapshotsResponse.Entry`, which a map entry
    /// could not have); the reference's extractor took the nested `Entry` for a map entry.
    /// Every `secrets` map is `[(csi_secret) = true]` upstream; the reference lacks the flag
    /// on six of them. Dropping it would let sidecars and our own logging leak secrets.
    const ERRATA: &[Erratum] = &[
        Erratum {
            kind: "field",
            scope: "csi.v1.ListVolumesResponse",
            name: "entries",
            column: "label",
            reference: "",
            ours: "repeated",
        },
        Erratum {
            kind: "field",
            scope: "csi.v1.ListVolumesResponse",
            name: "entries",
            column: "type",
            reference: "map<string,string>",
            ours: "csi.v1.ListVolumesResponse.Entry",
        },
        Erratum {
            kind: "field",
            scope: "csi.v1.ListSnapshotsResponse",
            name: "entries",
            column: "label",
            reference: "",
            ours: "repeated",
        },
        Erratum {
            kind: "field",
            scope: "csi.v1.ListSnapshotsResponse",
            name: "entries",
            column: "type",
            reference: "map<string,string>",
            ours: "csi.v1.ListSnapshotsResponse.Entry",
        },
        secret_erratum("csi.v1.ListSnapshotsRequest"),
        secret_erratum("csi.v1.GetSnapshotRequest"),
        secret_erratum("csi.v1.ControllerExpandVolumeRequest"),
        secret_erratum("csi.v1.NodeStageVolumeRequest"),
        secret_erratum("csi.v1.NodePublishVolumeRequest"),
        secret_erratum("csi.v1.NodeExpandVolumeRequest"),
    ];

    const fn secret_erratum(scope: &'static str) -> Erratum {
        Erratum {
            kind: "field",
            scope,
            name: "secrets",
            column: "flags",
            reference: "",
            ours: "secret",
        }
    }

    /// (kind, scope, name)
    type Key = (String, String, String);
    /// number, label, type, oneof, flags
    type Values = [String; 5];
    type Rows = BTreeMap<Key, Values>;

    fn key(kind: &str, scope: &str, name: &str) -> Key {
        (kind.to_owned(), scope.to_owned(), name.to_owned())
    }

    fn column_index(column: &str) -> usize {
        VALUE_COLUMNS
            .iter()
            .position(|c| *c == column)
            .unwrap_or_else(|| panic!("unknown column {column}"))
    }

    // ---------------------------------------------------------------------------------------
    // Our rows, from the decoded descriptor.
    // ---------------------------------------------------------------------------------------

    fn decode_set() -> FileDescriptorSet {
        FileDescriptorSet::decode(hearth_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set decodes")
    }

    fn csi_files(set: &FileDescriptorSet) -> Vec<&FileDescriptorProto> {
        let files: Vec<_> = set.file.iter().filter(|f| f.package() == PACKAGE).collect();
        assert!(!files.is_empty(), "no {PACKAGE} file in the descriptor set");
        files
    }

    fn scalar_name(ty: Type) -> &'static str {
        match ty {
            Type::Double => "double",
            Type::Float => "float",
            Type::Int64 => "int64",
            Type::Uint64 => "uint64",
            Type::Int32 => "int32",
            Type::Fixed64 => "fixed64",
            Type::Fixed32 => "fixed32",
            Type::Bool => "bool",
            Type::String => "string",
            Type::Group => "group",
            Type::Message => "message",
            Type::Bytes => "bytes",
            Type::Uint32 => "uint32",
            Type::Enum => "enum",
            Type::Sfixed32 => "sfixed32",
            Type::Sfixed64 => "sfixed64",
            Type::Sint32 => "sint32",
            Type::Sint64 => "sint64",
        }
    }

    fn type_name(field: &prost_types::FieldDescriptorProto) -> String {
        match field.r#type() {
            Type::Message | Type::Enum | Type::Group => {
                field.type_name().trim_start_matches('.').to_owned()
            }
            scalar => scalar_name(scalar).to_owned(),
        }
    }

    struct Ours<'a> {
        rows: Rows,
        raw: &'a RawFlags,
        /// Map-entry messages by full name, for spelling map fields.
        map_entries: BTreeMap<String, &'a DescriptorProto>,
    }

    impl<'a> Ours<'a> {
        fn build(set: &'a FileDescriptorSet, raw: &'a RawFlags) -> Rows {
            let mut ours = Ours {
                rows: Rows::new(),
                raw,
                map_entries: BTreeMap::new(),
            };
            for file in csi_files(set) {
                for message in &file.message_type {
                    ours.index_maps(PACKAGE, message);
                }
            }
            for file in csi_files(set) {
                for message in &file.message_type {
                    ours.message(PACKAGE, message);
                }
                for enumeration in &file.enum_type {
                    ours.enumeration(PACKAGE, enumeration);
                }
                for service in &file.service {
                    let scope = format!("{PACKAGE}.{}", service.name());
                    for method in &service.method {
                        let label = match (method.client_streaming(), method.server_streaming()) {
                            (false, false) => "",
                            (false, true) => "stream",
                            (true, false) => "client_stream",
                            (true, true) => "bidi_stream",
                        };
                        let ty = format!(
                            "{} -> {}",
                            method.input_type().trim_start_matches('.'),
                            method.output_type().trim_start_matches('.')
                        );
                        ours.insert(
                            key("rpc", &scope, method.name()),
                            [
                                String::new(),
                                label.to_owned(),
                                ty,
                                String::new(),
                                String::new(),
                            ],
                        );
                    }
                }
            }
            ours.rows
        }

        fn insert(&mut self, key: Key, values: Values) {
            let previous = self.rows.insert(key.clone(), values);
            assert!(previous.is_none(), "duplicate {key:?} in descriptor");
        }

        fn index_maps(&mut self, scope: &str, message: &'a DescriptorProto) {
            let name = format!("{scope}.{}", message.name());
            for nested in &message.nested_type {
                self.index_maps(&name, nested);
            }
            if message.options.as_ref().is_some_and(|o| o.map_entry()) {
                self.map_entries.insert(name, message);
            }
        }

        fn message(&mut self, scope: &str, message: &DescriptorProto) {
            let name = format!("{scope}.{}", message.name());
            if self.map_entries.contains_key(&name) {
                return; // synthetic map entry: its key/value are spelled in the map field's type
            }
            for field in &message.field {
                let map_entry = self
                    .map_entries
                    .get(field.type_name().trim_start_matches('.'));
                let (label, ty) = match map_entry {
                    Some(entry) if field.label() == Label::Repeated => {
                        let part = |n: i32| {
                            entry
                                .field
                                .iter()
                                .find(|f| f.number() == n)
                                .map(type_name)
                                .expect("map entry has key and value")
                        };
                        (String::new(), format!("map<{},{}>", part(1), part(2)))
                    }
                    _ => {
                        let label = match field.label() {
                            Label::Optional => "optional",
                            Label::Required => "required",
                            Label::Repeated => "repeated",
                        };
                        (label.to_owned(), type_name(field))
                    }
                };
                let oneof = match field.oneof_index {
                    Some(i) if !field.proto3_optional() => {
                        let index = usize::try_from(i).expect("oneof index");
                        message.oneof_decl[index].name().to_owned()
                    }
                    _ => String::new(),
                };
                let flags = self
                    .raw
                    .get("field", &format!("{name}.{}", field.name()))
                    .to_owned();
                self.insert(
                    key("field", &name, field.name()),
                    [field.number().to_string(), label, ty, oneof, flags],
                );
            }
            for nested in &message.nested_type {
                self.message(&name, nested);
            }
            for enumeration in &message.enum_type {
                self.enumeration(&name, enumeration);
            }
        }

        fn enumeration(&mut self, scope: &str, enumeration: &EnumDescriptorProto) {
            let name = format!("{scope}.{}", enumeration.name());
            for value in &enumeration.value {
                // The reference carries flags for fields only; enum-value alpha markers are
                // counted separately below.
                self.insert(
                    key("enum", &name, value.name()),
                    [
                        value.number().to_string(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                    ],
                );
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // The reference
    // ---------------------------------------------------------------------------------------

    fn reference_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(REFERENCE)
    }

    fn parse_reference(text: &str) -> Rows {
        let mut lines = text.lines();
        let header: Vec<&str> = lines
            .next()
            .expect("reference has a header")
            .split('\t')
            .collect();
        assert_eq!(header, HEADER, "unexpected reference columns");
        let mut rows = Rows::new();
        for (i, line) in lines.enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(
                cols.len(),
                HEADER.len(),
                "reference line {} has {} columns",
                i + 2,
                cols.len()
            );
            let row_key = key(cols[0], cols[1], cols[2]);
            let values = [cols[3], cols[4], cols[5], cols[6], cols[7]].map(str::to_owned);
            let previous = rows.insert(row_key.clone(), values);
            assert!(previous.is_none(), "duplicate reference row {row_key:?}");
        }
        rows
    }

    /// Applies the errata to the reference rows, checking each one is still needed.
    fn apply_errata(reference: &mut Rows, ours: &Rows, problems: &mut Vec<String>) {
        for e in ERRATA {
            let row_key = key(e.kind, e.scope, e.name);
            let col = column_index(e.column);
            let Some(row) = reference.get_mut(&row_key) else {
                problems.push(format!("erratum for missing reference row {row_key:?}"));
                continue;
            };
            if row[col] != e.reference {
                problems.push(format!(
                    "stale erratum {row_key:?} {}: reference now says {:?}, drop the erratum",
                    e.column, row[col]
                ));
            }
            match ours.get(&row_key) {
                Some(our_row) if our_row[col] == e.ours => {}
                other => problems.push(format!(
                    "erratum {row_key:?} {}: expected ours {:?}, got {:?}",
                    e.column,
                    e.ours,
                    other.map(|r| &r[col])
                )),
            }
            e.ours.clone_into(&mut row[col]);
        }
    }

    fn compare(reference: &Rows, ours: &Rows, problems: &mut Vec<String>) {
        for (row_key, want) in reference {
            match ours.get(row_key) {
                None => problems.push(format!("missing from csi.proto: {row_key:?}")),
                Some(got) => {
                    for (i, column) in VALUE_COLUMNS.iter().enumerate() {
                        if want[i] != got[i] {
                            problems.push(format!(
                                "{row_key:?} {column}: reference {:?}, ours {:?}",
                                want[i], got[i]
                            ));
                        }
                    }
                }
            }
        }
        for row_key in ours.keys() {
            if !reference.contains_key(row_key) {
                problems.push(format!(
                    "not in the reference (extra in csi.proto): {row_key:?}"
                ));
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Tests
    // ---------------------------------------------------------------------------------------

    #[test]
    fn csi_descriptor_matches_the_v1_12_reference() {
        let path = reference_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) => {
                eprintln!(
                    "skipping: CSI wire reference {} not found ({err})",
                    path.display()
                );
                return;
            }
        };
        let mut reference = parse_reference(&text);

        let set = decode_set();
        let raw = RawFlags::collect(hearth_proto::FILE_DESCRIPTOR_SET, PACKAGE);
        let ours = Ours::build(&set, &raw);

        let mut problems = Vec::new();
        apply_errata(&mut reference, &ours, &mut problems);
        compare(&reference, &ours, &mut problems);
        assert!(
            problems.is_empty(),
            "csi.proto differs from the v1.12.0 reference in {} place(s):\n{}",
            problems.len(),
            problems.join("\n")
        );

        let count = |kind: &str| reference.keys().filter(|(k, _, _)| k == kind).count();
        let flagged_fields = reference.values().filter(|v| !v[4].is_empty()).count();
        println!(
            "checked {} fields, {} enum values, {} rpcs ({} flagged fields, {} errata applied)",
            count("field"),
            count("enum"),
            count("rpc"),
            flagged_fields,
            ERRATA.len()
        );
        println!(
            "alpha markers outside fields (not in the reference): {} messages, {} enum values, {} rpcs, {} services",
            raw.flagged("message", "alpha"),
            raw.flagged("enum_value", "alpha"),
            raw.flagged("rpc", "alpha"),
            raw.flagged("service", "alpha"),
        );
    }

    /// Runs without the reference: the upstream invariants a CSI driver relies on.
    #[test]
    fn csi_descriptor_has_services_and_marks_secrets() {
        let set = decode_set();
        let raw = RawFlags::collect(hearth_proto::FILE_DESCRIPTOR_SET, PACKAGE);

        let services: BTreeSet<&str> = csi_files(&set)
            .iter()
            .flat_map(|f| f.service.iter().map(|s| s.name()))
            .collect();
        let expected: BTreeSet<&str> = [
            "Controller",
            "GroupController",
            "Identity",
            "Node",
            "SnapshotMetadata",
        ]
        .into_iter()
        .collect();
        assert_eq!(services, expected);

        // Every `secrets` map carries csi_secret, and nothing else does.
        let mut secrets = 0;
        for (element, flags) in &raw.by_element {
            let Some(field) = element.strip_prefix("field ") else {
                continue;
            };
            let is_secret = flags.split(',').any(|f| f == "secret");
            assert_eq!(
                is_secret,
                field.ends_with(".secrets"),
                "csi_secret on {field}: {flags:?}"
            );
            secrets += usize::from(is_secret);
        }
        assert_eq!(secrets, 19, "number of secrets fields");

        assert_eq!(raw.get("service", "csi.v1.SnapshotMetadata"), "alpha");
        assert_eq!(
            raw.get("rpc", "csi.v1.Controller.ControllerGetVolume"),
            "alpha"
        );
        assert_eq!(raw.get("message", "csi.v1.VolumeCondition"), "alpha");
        assert_eq!(
            raw.get(
                "enum_value",
                "csi.v1.PluginCapability.Service.Type.SNAPSHOT_METADATA_SERVICE"
            ),
            "alpha"
        );
    }
}
