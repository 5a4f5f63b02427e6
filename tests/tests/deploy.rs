//! The deployment files, checked without a cluster and without helm: the chart's values against
//! `values.schema.json` and the README table, the static manifests and examples against the
//! Kubernetes schemas (kubernetes-validate), `deploy/crds` against `hearth crds`, the hearth.io
//! examples against their CRD's OpenAPI schema, the Grafana dashboard against the real metric
//! names, and the Talos extension against the field lists of the Talos docs.
//!
//! check-jsonschema and kubernetes-validate (PyPI) live in a venv at
//! `target/deploy-validate-venv` (or `$HEARTH_DEPLOY_VENV`), which `tests/run` creates; a test
//! creates it too when it is missing. Without python3 or PyPI the tests that need the tools skip
//! with a printed reason; under `CI=true` that is a failure. helm cannot be installed here: when
//! a `helm` is on PATH, `helm lint` and `helm template` run as well, else the test says so.
//!
//! What cannot be validated statically, and how it is covered instead:
//! - The chart's templates are Go templates: without helm they are checked only for the values
//!   they reference (every `.Values.x` must exist in values.yaml).
//! - Kinds whose schemas come from other projects' CRDs, which kubernetes-validate does not ship
//!   (VolumeSnapshotClass, Flux's GitRepository and HelmRelease): kubernetes-validate reports
//!   them as unknown; the test accepts exactly the kinds in [`FOREIGN_KINDS`], prints why, and
//!   checks the fields Hearth depends on itself. VMServiceScrape and ServiceMonitor exist only in
//!   a template.
//! - hearth.io kinds (FloatingIPPool, FloatingIP) are validated with check-jsonschema against
//!   the `openAPIV3Schema` of the CRD in `deploy/crds`, with unknown fields refused.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hearth_tests::python::Venv;
use serde::Deserialize;
use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

/// The Kubernetes version the manifests are validated for: Talos 1.10 ships 1.33, and
/// kubernetes-validate 1.37 has its schemas.
const K8S_VERSION: &str = "1.33.0";

/// Pinned tool versions, the same as tests/run installs.
const PIP_PACKAGES: [&str; 2] = ["check-jsonschema==0.39.0", "kubernetes-validate==1.37.0"];

/// Kinds kubernetes-validate has no schema for, and why that is acceptable.
const FOREIGN_KINDS: [(&str, &str); 5] = [
    (
        "VolumeSnapshotClass",
        "external-snapshotter CRD; driver and deletionPolicy are checked here",
    ),
    (
        "GitRepository",
        "Flux source-controller CRD (the HelmRelease example's source)",
    ),
    (
        "HelmRelease",
        "Flux helm-controller CRD; its values are checked against values.schema.json here",
    ),
    (
        "FloatingIPPool",
        "hearth.io CRD: checked against deploy/crds with check-jsonschema",
    ),
    (
        "FloatingIP",
        "hearth.io CRD: checked against deploy/crds with check-jsonschema",
    ),
];

/// The CRDs the coordinator's store uses, with their plural and whether they have a status
/// subresource (the chart's RBAC depends on exactly these).
const HEARTH_CRDS: [(&str, &str, bool); 4] = [
    ("FloatingIPPool", "floatingippools", false),
    ("FloatingIP", "floatingips", true),
    ("FloatingIPClaim", "floatingipclaims", false),
    ("HearthVolume", "hearthvolumes", false),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

fn chart() -> PathBuf {
    repo().join("deploy/charts/hearth")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every non-empty document of a YAML stream.
fn yaml_docs(text: &str) -> Vec<Yaml> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| Yaml::deserialize(d).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn yaml_file_docs(path: &Path) -> Vec<Yaml> {
    yaml_docs(&read(path))
}

fn to_json(v: &Yaml) -> Json {
    serde_json::to_value(v).expect("YAML that maps to JSON")
}

/// JSON with every object's keys sorted, so equal documents print equally.
fn canonical(v: &Json) -> String {
    fn sort(v: &Json) -> Json {
        match v {
            Json::Object(m) => {
                let sorted: BTreeMap<_, _> = m.iter().map(|(k, v)| (k.clone(), sort(v))).collect();
                Json::Object(sorted.into_iter().collect())
            }
            Json::Array(a) => Json::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sort(v)).expect("serialize")
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The venv's bin directory with both tools, creating the venv when it is missing.
fn venv_bin(test: &str) -> Option<PathBuf> {
    let what = format!("{test} test");
    let venv = Venv {
        what: &what,
        env: "HEARTH_DEPLOY_VENV",
        default_dir: "deploy-validate-venv",
        packages: &PIP_PACKAGES,
        import: "import check_jsonschema, kubernetes_validate",
    };
    venv.python()?;
    Some(venv.dir().join("bin"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// check-jsonschema of `instances` against `schema`; Err with its report.
fn check_jsonschema(bin: &Path, schema: &Path, instances: &[&Path]) -> Result<(), String> {
    let o = run(Command::new(bin.join("check-jsonschema"))
        .arg("--schemafile")
        .arg(schema)
        .args(instances));
    if o.status.success() {
        Ok(())
    } else {
        Err(text(&o))
    }
}

/// Leaf paths of a values tree: maps recurse, anything else (lists, scalars, `{}`) is a leaf.
fn leaf_paths(v: &Yaml, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Yaml::Mapping(m) if !m.is_empty() => {
            for (k, v) in m {
                let k = k.as_str().expect("string keys");
                let p = if prefix.is_empty() {
                    k.to_owned()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_paths(v, &p, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

/// Every path of a values tree, inner nodes included.
fn all_paths(v: &Yaml) -> BTreeSet<String> {
    let mut leaves = BTreeSet::new();
    leaf_paths(v, "", &mut leaves);
    let mut all = BTreeSet::new();
    for l in &leaves {
        let mut p = String::new();
        for part in l.split('.') {
            if !p.is_empty() {
                p.push('.');
            }
            p.push_str(part);
            all.insert(p.clone());
        }
    }
    all
}

fn values() -> Yaml {
    serde_yaml_ng::from_str(&read(&chart().join("values.yaml"))).expect("values.yaml")
}

/// `a` with `b` merged over it (maps merge, anything else is replaced), as Helm does.
fn merge(a: &Json, b: &Json) -> Json {
    match (a, b) {
        (Json::Object(a), Json::Object(b)) => {
            let mut out = a.clone();
            for (k, v) in b {
                let merged = out.get(k).map_or_else(|| v.clone(), |old| merge(old, v));
                out.insert(k.clone(), merged);
            }
            Json::Object(out)
        }
        (_, b) => b.clone(),
    }
}

fn docs_of_kind(kind: &str) -> Vec<(PathBuf, Yaml)> {
    files_with_ext(&repo().join("deploy/examples"), "yaml")
        .into_iter()
        .flat_map(|p| yaml_file_docs(&p).into_iter().map(move |d| (p.clone(), d)))
        .filter(|(_, d)| d["kind"].as_str() == Some(kind))
        .collect()
}

#[test]
fn values_yaml_matches_values_schema() {
    let test = "values_yaml_matches_values_schema";
    let Some(bin) = venv_bin(test) else { return };
    let schema = chart().join("values.schema.json");
    let o = run(Command::new(bin.join("check-jsonschema"))
        .arg("--check-metaschema")
        .arg(&schema));
    assert!(
        o.status.success(),
        "values.schema.json is not a valid schema:\n{}",
        text(&o)
    );
    check_jsonschema(&bin, &schema, &[&chart().join("values.yaml")])
        .unwrap_or_else(|e| panic!("values.yaml does not match its schema:\n{e}"));

    let dir = tempfile::tempdir().expect("tempdir");
    let defaults = to_json(&values());
    // The schema must refuse typos and a LINSTOR backend without a URL.
    let bad: [(&str, Json); 3] = [
        (
            "a misspelt key",
            serde_json::json!({"node": {"tolerationz": []}}),
        ),
        (
            "linstor without a URL",
            serde_json::json!({"backend": {"type": "linstor"}}),
        ),
        (
            "an unknown monitoring kind",
            serde_json::json!({"monitoring": {"kind": "PodMonitor"}}),
        ),
    ];
    for (what, overlay) in bad {
        let f = dir.path().join("bad.json");
        std::fs::write(&f, merge(&defaults, &overlay).to_string()).expect("write");
        assert!(
            check_jsonschema(&bin, &schema, &[&f]).is_err(),
            "values.schema.json accepts {what}"
        );
    }
    // The values of the Flux example, over the defaults, as Helm would see them.
    let releases = docs_of_kind("HelmRelease");
    assert!(!releases.is_empty(), "no HelmRelease example");
    for (path, hr) in releases {
        let f = dir.path().join("helmrelease-values.json");
        std::fs::write(
            &f,
            merge(&defaults, &to_json(&hr["spec"]["values"])).to_string(),
        )
        .expect("write");
        check_jsonschema(&bin, &schema, &[&f]).unwrap_or_else(|e| {
            panic!(
                "the values of {} do not match the schema:\n{e}",
                path.display()
            )
        });
    }
}

#[test]
fn every_value_is_documented_in_the_chart_readme() {
    let values = values();
    let mut leaves = BTreeSet::new();
    leaf_paths(&values, "", &mut leaves);
    let all = all_paths(&values);

    // Rows of the README's values table: | `key` | description | default |
    let readme = read(&chart().join("README.md"));
    let documented: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(k, _)| k.to_owned()))
        .collect();
    assert!(
        !documented.is_empty(),
        "no values table in the chart README"
    );
    let undocumented: Vec<&String> = leaves
        .iter()
        .filter(|leaf| {
            !documented
                .iter()
                .any(|d| *leaf == d || leaf.starts_with(&format!("{d}.")))
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "values missing from README.md: {undocumented:?}"
    );
    let stale: Vec<&String> = documented.iter().filter(|d| !all.contains(*d)).collect();
    assert!(
        stale.is_empty(),
        "README.md documents values that do not exist: {stale:?}"
    );

    // values.yaml documents each key in place too (`## @param key ...`).
    let params: BTreeSet<String> = read(&chart().join("values.yaml"))
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("## @param "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    let stale: Vec<&String> = params.iter().filter(|p| !all.contains(*p)).collect();
    assert!(
        stale.is_empty(),
        "values.yaml has @param for missing keys: {stale:?}"
    );
    assert_eq!(
        params, documented,
        "values.yaml @param keys and README rows differ"
    );
}

#[test]
fn templates_reference_only_existing_values() {
    let all = all_paths(&values());
    let mut missing = Vec::new();
    let dir = chart().join("templates");
    let mut files = files_with_ext(&dir, "yaml");
    files.extend(files_with_ext(&dir, "tpl"));
    files.extend(files_with_ext(&dir, "txt"));
    for f in files {
        let t = read(&f);
        for (i, _) in t.match_indices(".Values.") {
            let rest = &t[i + ".Values.".len()..];
            let key: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
                .collect();
            let key = key.trim_end_matches('.');
            if !all.contains(key) {
                missing.push(format!("{}: .Values.{key}", f.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "templates use undefined values: {missing:#?}"
    );

    // The driver name is the binary's, not a value.
    let helpers = read(&dir.join("_helpers.tpl"));
    assert!(
        helpers.contains(&format!(
            "define \"hearth.driverName\" -}}}}{}{{{{- end",
            hearth_csi::DRIVER_NAME
        )),
        "_helpers.tpl must define hearth.driverName as {}",
        hearth_csi::DRIVER_NAME
    );
}

#[test]
fn examples_name_the_real_driver() {
    for (path, sc) in docs_of_kind("StorageClass") {
        assert_eq!(
            sc["provisioner"].as_str(),
            Some(hearth_csi::DRIVER_NAME),
            "{}",
            path.display()
        );
    }
    let classes: BTreeSet<String> = docs_of_kind("StorageClass")
        .into_iter()
        .filter_map(|(_, d)| d["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    for want in ["local", "replicated", "kubevirt"] {
        assert!(classes.contains(want), "no StorageClass {want}");
    }
    let snap = docs_of_kind("VolumeSnapshotClass");
    assert!(!snap.is_empty(), "no VolumeSnapshotClass example");
    for (path, c) in snap {
        assert_eq!(
            c["driver"].as_str(),
            Some(hearth_csi::DRIVER_NAME),
            "{}",
            path.display()
        );
        assert!(
            matches!(c["deletionPolicy"].as_str(), Some("Delete" | "Retain")),
            "{}: deletionPolicy must be Delete or Retain",
            path.display()
        );
    }
    for (path, hr) in docs_of_kind("HelmRelease") {
        let chart_path = hr["spec"]["chart"]["spec"]["chart"]
            .as_str()
            .unwrap_or_default();
        assert!(
            repo().join(chart_path).join("Chart.yaml").exists(),
            "{}: chart {chart_path:?} is not in the repository",
            path.display()
        );
    }
}

/// kubernetes-validate over files; returns the kinds it had no schema for.
fn kubernetes_validate(bin: &Path, files: &[PathBuf]) -> BTreeSet<String> {
    let o = run(Command::new(bin.join("kubernetes-validate"))
        .args(["--kubernetes-version", K8S_VERSION, "--strict"])
        .args(files));
    let out = text(&o);
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("ERROR")).collect();
    assert!(
        o.status.success() && errors.is_empty(),
        "kubernetes-validate {K8S_VERSION} --strict failed:\n{out}"
    );
    let docs: usize = files.iter().map(|f| yaml_file_docs(f).len()).sum();
    let seen = out
        .lines()
        .filter(|l| l.starts_with("INFO") || l.starts_with("WARN"))
        .count();
    assert_eq!(
        seen, docs,
        "kubernetes-validate did not report every document:\n{out}"
    );
    out.lines()
        .filter_map(|l| l.split_once("Couldn't find schema for kind "))
        .filter_map(|(_, rest)| rest.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn static_manifests_pass_kubernetes_validate() {
    let test = "static_manifests_pass_kubernetes_validate";
    let Some(bin) = venv_bin(test) else { return };
    let mut files = files_with_ext(&repo().join("deploy/examples"), "yaml");
    files.extend(files_with_ext(&repo().join("deploy/crds"), "yaml"));
    assert!(!files.is_empty());
    let unknown = kubernetes_validate(&bin, &files);
    for kind in &unknown {
        let Some((_, why)) = FOREIGN_KINDS.iter().find(|(k, _)| k == kind) else {
            panic!("kubernetes-validate has no schema for {kind}, and it is not a known foreign kind (a typo in apiVersion?)");
        };
        eprintln!("kubernetes-validate: no schema for {kind}, skipped there: {why}");
    }
}

/// The CRDs of `deploy/crds`, by kind.
fn crds_by_kind() -> BTreeMap<String, Json> {
    files_with_ext(&repo().join("deploy/crds"), "yaml")
        .iter()
        .flat_map(|p| yaml_file_docs(p))
        .map(|d| to_json(&d))
        .filter_map(|d| {
            d["spec"]["names"]["kind"]
                .as_str()
                .map(|k| (k.to_owned(), d.clone()))
        })
        .collect()
}

/// The `---`-separated documents of `hearth crds`, raw, keyed by CRD name.
fn split_stream(stream: &str) -> BTreeMap<String, String> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    for line in stream.lines() {
        if line == "---" && !cur.trim().is_empty() {
            docs.push(std::mem::take(&mut cur));
        }
        cur.push_str(line);
        cur.push('\n');
    }
    if !cur.trim().is_empty() {
        docs.push(cur);
    }
    docs.into_iter()
        .map(|d| {
            let v: Yaml = serde_yaml_ng::from_str(&d).expect("a CRD document");
            let name = v["metadata"]["name"]
                .as_str()
                .expect("metadata.name")
                .to_owned();
            let d = if d.starts_with("---") {
                d
            } else {
                format!("---\n{d}")
            };
            (name, d)
        })
        .collect()
}

#[test]
fn crds_equal_what_hearth_crds_prints() {
    let out = run(Command::new(hearth_tests::hearth_bin()).arg("crds"));
    assert!(
        out.status.success(),
        "`hearth crds` failed:\n{}",
        text(&out)
    );
    let stream = String::from_utf8(out.stdout).expect("UTF-8");
    let crd_dir = repo().join("deploy/crds");
    let chart_crds = chart().join("crds");

    if std::env::var("HEARTH_BLESS_CRDS").as_deref() == Ok("1") {
        for dir in [&crd_dir, &chart_crds] {
            for old in files_with_ext(dir, "yaml") {
                std::fs::remove_file(old).expect("remove an old CRD file");
            }
            for (name, doc) in split_stream(&stream) {
                std::fs::write(dir.join(format!("{name}.yaml")), doc).expect("write a CRD");
            }
        }
        eprintln!("wrote deploy/crds and deploy/charts/hearth/crds from `hearth crds`");
    }

    let generated: BTreeSet<String> = yaml_docs(&stream)
        .iter()
        .map(|d| canonical(&to_json(d)))
        .collect();
    let files = files_with_ext(&crd_dir, "yaml");
    assert!(
        !files.is_empty(),
        "deploy/crds has no CRD files; generate them: HEARTH_BLESS_CRDS=1 cargo test -p hearth-tests --test deploy crds"
    );
    let mut committed = BTreeSet::new();
    for f in &files {
        let docs = yaml_file_docs(f);
        assert_eq!(docs.len(), 1, "{}: one CRD per file", f.display());
        let name = docs[0]["metadata"]["name"].as_str().unwrap_or_default();
        assert_eq!(
            f.file_name().and_then(|n| n.to_str()),
            Some(format!("{name}.yaml").as_str()),
            "a CRD file is named after its CRD"
        );
        assert!(
            read(f).starts_with("---"),
            "{}: starts with ---",
            f.display()
        );
        committed.insert(canonical(&to_json(&docs[0])));
    }
    assert!(
        generated == committed,
        "deploy/crds differs from `hearth crds`; regenerate: HEARTH_BLESS_CRDS=1 cargo test -p hearth-tests --test deploy crds"
    );

    // The chart carries the same files in Helm's crds/ directory.
    let copies = files_with_ext(&chart_crds, "yaml");
    let names = |fs: &[PathBuf]| -> Vec<String> {
        fs.iter()
            .filter_map(|f| f.file_name()?.to_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        names(&copies),
        names(&files),
        "deploy/charts/hearth/crds lists other files"
    );
    for f in &files {
        let copy = chart_crds.join(f.file_name().expect("file name"));
        assert_eq!(
            read(&copy),
            read(f),
            "{} differs from {}",
            copy.display(),
            f.display()
        );
    }

    // The shapes the chart's RBAC and the examples rely on.
    let by_kind = crds_by_kind();
    let rbac = read(&chart().join("templates/rbac.yaml"));
    for (kind, plural, status) in HEARTH_CRDS {
        let crd = by_kind
            .get(kind)
            .unwrap_or_else(|| panic!("no CRD of kind {kind}"));
        assert_eq!(crd["spec"]["group"], "hearth.io", "{kind}");
        assert_eq!(crd["spec"]["scope"], "Cluster", "{kind}");
        assert_eq!(crd["spec"]["names"]["plural"], plural, "{kind}");
        assert!(
            crd["spec"]["versions"].as_array().is_some_and(|vs| vs
                .iter()
                .any(|v| v["name"] == "v1alpha1" && v["served"] == true)),
            "{kind} serves v1alpha1"
        );
        let has_status = crd["spec"]["versions"]
            .as_array()
            .is_some_and(|vs| vs.iter().any(|v| v["subresources"]["status"].is_object()));
        assert_eq!(has_status, status, "{kind}: status subresource");
        assert!(
            rbac.contains(&format!("\"{plural}\"")),
            "rbac.yaml lacks {plural}"
        );
        if status {
            assert!(
                rbac.contains(&format!("\"{plural}/status\"")),
                "rbac.yaml lacks {plural}/status"
            );
        }
    }
}

/// A CRD's `openAPIV3Schema` as a JSON Schema that refuses unknown fields, as the API server's
/// strict field validation does (unless the schema preserves unknown fields).
fn strict_schema(v: &Json) -> Json {
    match v {
        Json::Object(m) => {
            let mut out: serde_json::Map<String, Json> = m
                .iter()
                .map(|(k, v)| (k.clone(), strict_schema(v)))
                .collect();
            let preserves =
                m.get("x-kubernetes-preserve-unknown-fields") == Some(&Json::Bool(true));
            if m.contains_key("properties") && !m.contains_key("additionalProperties") && !preserves
            {
                out.insert("additionalProperties".into(), Json::Bool(false));
            }
            Json::Object(out)
        }
        Json::Array(a) => Json::Array(a.iter().map(strict_schema).collect()),
        other => other.clone(),
    }
}

#[test]
fn hearth_examples_match_their_crd_schemas() {
    let test = "hearth_examples_match_their_crd_schemas";
    let Some(bin) = venv_bin(test) else { return };
    let by_kind = crds_by_kind();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut checked = 0;
    for path in files_with_ext(&repo().join("deploy/examples"), "yaml") {
        for (i, doc) in yaml_file_docs(&path).iter().enumerate() {
            let api = doc["apiVersion"].as_str().unwrap_or_default();
            let Some(version) = api.strip_prefix("hearth.io/") else {
                continue;
            };
            let kind = doc["kind"].as_str().unwrap_or_default();
            let crd = by_kind.get(kind).unwrap_or_else(|| {
                panic!(
                    "{}: no CRD for {kind} in deploy/crds (generate them with `hearth crds`)",
                    path.display()
                )
            });
            let v = crd["spec"]["versions"]
                .as_array()
                .and_then(|vs| vs.iter().find(|v| v["name"] == version))
                .unwrap_or_else(|| panic!("{kind}: the CRD has no version {version}"));
            let schema = dir.path().join(format!("{kind}.schema.json"));
            // The apiserver adds apiVersion, kind and metadata to every CRD's root schema.
            let mut root = strict_schema(&v["schema"]["openAPIV3Schema"]);
            if let Some(props) = root["properties"].as_object_mut() {
                props.insert("apiVersion".into(), serde_json::json!({"type": "string"}));
                props.insert("kind".into(), serde_json::json!({"type": "string"}));
                props.insert("metadata".into(), serde_json::json!({"type": "object"}));
            }
            std::fs::write(&schema, root.to_string()).expect("write");
            let inst = dir.path().join(format!("{kind}-{i}.json"));
            std::fs::write(&inst, to_json(doc).to_string()).expect("write");
            check_jsonschema(&bin, &schema, &[&inst]).unwrap_or_else(|e| {
                panic!("{} ({kind}) does not match its CRD:\n{e}", path.display())
            });
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "expected FloatingIPPool and FloatingIP examples"
    );
}

/// Metric names in docs/status.md's `/metrics` table.
fn documented_metrics() -> BTreeSet<String> {
    let doc = read(&repo().join("docs/status.md"));
    let table = doc
        .split("## `/metrics`")
        .nth(1)
        .expect("a /metrics section");
    table
        .lines()
        .filter(|l| l.starts_with("| `hearth_"))
        .flat_map(|l| {
            let first_cell = l.split('|').nth(1).unwrap_or_default();
            first_cell
                .split('`')
                .filter(|s| s.starts_with("hearth_"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn grafana_dashboard_uses_real_metric_names() {
    let dash: Json = serde_json::from_str(&read(&chart().join("dashboards/hearth.json")))
        .expect("dashboard JSON");
    let documented = documented_metrics();
    assert!(
        documented.len() > 20,
        "the metric table of docs/status.md: {documented:?}"
    );
    let code = read(&repo().join("agent/src/health/metrics.rs"));
    let histograms = ["hearth_csi_operation_duration_seconds"];

    let mut exprs = Vec::new();
    let mut ids = BTreeSet::new();
    for p in dash["panels"].as_array().expect("panels") {
        assert!(
            ids.insert(p["id"].as_i64().expect("panel id")),
            "duplicate panel id"
        );
        for t in p["targets"].as_array().into_iter().flatten() {
            exprs.push(t["expr"].as_str().expect("expr").to_owned());
        }
    }
    assert!(exprs.len() > 10, "the dashboard has few queries");
    let mut used = BTreeSet::new();
    for e in &exprs {
        for (i, _) in e.match_indices("hearth_") {
            if i > 0 && e[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let name: String = e[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            used.insert(name);
        }
    }
    for name in &used {
        let family = histograms
            .iter()
            .find(|h| {
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| *name == format!("{h}{s}"))
            })
            .map_or(name.as_str(), |h| *h);
        assert!(
            documented.contains(family),
            "{name} is not in docs/status.md"
        );
        // The code declares the family without the unit and _total suffixes.
        let base = family.trim_end_matches("_total");
        let base = base
            .strip_suffix("_bytes")
            .or_else(|| base.strip_suffix("_seconds"))
            .unwrap_or(base);
        assert!(
            code.contains(&format!("\"{base}\"")),
            "{base} is not in metrics.rs"
        );
    }
    // The main families are on the dashboard.
    for want in [
        "hearth_check_ok",
        "hearth_csi_operations_total",
        "hearth_drbd_peer_connected",
    ] {
        assert!(used.contains(want), "the dashboard does not show {want}");
    }
}

// ---- Talos ----------------------------------------------------------------------------------

/// The fields of a system extension's `manifest.yaml`, as the Talos docs and
/// siderolabs/extensions give them (sample: talos-ext-drbd--manifest.yaml.tmpl).
const EXT_TOP: [&str; 2] = ["version", "metadata"];
const EXT_METADATA: [&str; 5] = ["name", "version", "author", "description", "compatibility"];

/// The fields of an extension service spec, from the Talos docs' "Extension Services" page
/// (samples: talos-ext-zfs--zfs-service.yaml, talos-ext-iscsi-tools--iscsid.yaml).
const SVC_TOP: [&str; 5] = ["name", "container", "depends", "restart", "logToConsole"];
const SVC_CONTAINER: [&str; 6] = [
    "entrypoint",
    "environment",
    "environmentFile",
    "args",
    "mounts",
    "security",
];
const SVC_SECURITY: [&str; 5] = [
    "maskedPaths",
    "readonlyPaths",
    "writeableRootfs",
    "writeableSysfs",
    "rootfsPropagation",
];
const SVC_MOUNT: [&str; 4] = ["source", "destination", "type", "options"];
const SVC_DEPENDS: [&str; 5] = ["service", "path", "network", "time", "configuration"];
const SVC_NETWORK: [&str; 4] = ["addresses", "connectivity", "hostname", "etcfiles"];
const SVC_RESTART: [&str; 3] = ["never", "always", "untilSuccess"];

fn keys(v: &Yaml, what: &str) -> Vec<String> {
    v.as_mapping()
        .unwrap_or_else(|| panic!("{what} is not a mapping"))
        .keys()
        .map(|k| k.as_str().expect("string key").to_owned())
        .collect()
}

fn only(v: &Yaml, allowed: &[&str], what: &str) -> Vec<String> {
    let ks = keys(v, what);
    for k in &ks {
        assert!(
            allowed.contains(&k.as_str()),
            "{what}: unknown field {k:?} (Talos knows {allowed:?})"
        );
    }
    ks
}

fn check_extension_manifest(m: &Yaml, what: &str) {
    only(m, &EXT_TOP, what);
    assert_eq!(m["version"].as_str(), Some("v1alpha1"), "{what}: version");
    let md = &m["metadata"];
    let ks = only(md, &EXT_METADATA, &format!("{what} metadata"));
    for k in EXT_METADATA {
        assert!(
            ks.iter().any(|x| x == k),
            "{what}: metadata.{k} is required"
        );
    }
    only(
        &md["compatibility"],
        &["talos"],
        &format!("{what} compatibility"),
    );
    only(
        &md["compatibility"]["talos"],
        &["version"],
        &format!("{what} compatibility.talos"),
    );
    assert!(
        md["compatibility"]["talos"]["version"].as_str().is_some(),
        "{what}: talos version"
    );
}

fn check_service(s: &Yaml, what: &str) {
    only(s, &SVC_TOP, what);
    let name = s["name"].as_str().unwrap_or_else(|| panic!("{what}: name"));
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'),
        "{what}: name must match [a-z0-9-_]+"
    );
    let c = &s["container"];
    only(c, &SVC_CONTAINER, &format!("{what} container"));
    assert!(
        c["entrypoint"].as_str().is_some(),
        "{what}: container.entrypoint is required"
    );
    if !c["security"].is_null() {
        only(
            &c["security"],
            &SVC_SECURITY,
            &format!("{what} container.security"),
        );
    }
    for m in c["mounts"].as_sequence().into_iter().flatten() {
        let ks = only(m, &SVC_MOUNT, &format!("{what} mount"));
        assert!(ks.iter().any(|k| k == "source") && ks.iter().any(|k| k == "destination"));
    }
    for d in s["depends"].as_sequence().into_iter().flatten() {
        let ks = only(d, &SVC_DEPENDS, &format!("{what} depends"));
        assert_eq!(ks.len(), 1, "{what}: one condition per depends entry");
        for n in d["network"].as_sequence().into_iter().flatten() {
            assert!(
                SVC_NETWORK.contains(&n.as_str().unwrap_or_default()),
                "{what}: network {n:?}"
            );
        }
    }
    let restart = s["restart"].as_str().unwrap_or_default();
    assert!(
        SVC_RESTART.contains(&restart),
        "{what}: restart {restart:?}"
    );
}

#[test]
fn talos_field_lists_accept_the_reference_samples() {
    let dir = repo().join("../shared/reference/samples");
    if !dir.exists() {
        // Not the project's files: only present beside the repository on development machines.
        eprintln!(
            "skipping talos_field_lists_accept_the_reference_samples: {} is absent",
            dir.display()
        );
        return;
    }
    for f in [
        "talos-ext-drbd--manifest.yaml.tmpl",
        "talos-ext-zfs--manifest.yaml.tmpl",
    ] {
        check_extension_manifest(&yaml_file_docs(&dir.join(f))[0], f);
    }
    for f in [
        "talos-ext-zfs--zfs-service.yaml",
        "talos-ext-iscsi-tools--iscsid.yaml",
    ] {
        check_service(&yaml_file_docs(&dir.join(f))[0], f);
    }
}

#[test]
fn talos_extension_and_patch_have_what_hearth_needs() {
    let talos = repo().join("talos-extensions");
    let manifest = &yaml_file_docs(&talos.join("hearth/manifest.yaml"))[0];
    check_extension_manifest(manifest, "hearth/manifest.yaml");
    let service = &yaml_file_docs(&talos.join("hearth/hearth-net.yaml"))[0];
    check_service(service, "hearth/hearth-net.yaml");

    // The image layout: the service spec at rootfs/usr/local/etc/containers/<name>.yaml, its
    // entrypoint relative to rootfs/usr/local/lib/containers/<name>/.
    let name = service["name"].as_str().expect("name");
    let entry = service["container"]["entrypoint"]
        .as_str()
        .expect("entrypoint");
    let containerfile = read(&talos.join("hearth/Containerfile"));
    assert!(
        containerfile.contains("/manifest.yaml\n"),
        "Containerfile: /manifest.yaml"
    );
    assert!(
        containerfile.contains(&format!("/rootfs/usr/local/etc/containers/{name}.yaml")),
        "Containerfile: the service spec path"
    );
    let bin = entry.trim_start_matches("./");
    assert!(
        containerfile.contains(&format!("/rootfs/usr/local/lib/containers/{name}/{bin}")),
        "Containerfile: the entrypoint {entry}"
    );
    let config = &yaml_file_docs(&talos.join("extension-service-config.yaml"))[0];
    assert_eq!(config["kind"].as_str(), Some("ExtensionServiceConfig"));
    assert_eq!(
        config["name"].as_str(),
        Some(name),
        "ExtensionServiceConfig names the service"
    );

    let patch = &yaml_file_docs(&talos.join("machine-config-patch.yaml"))[0];
    let modules: BTreeMap<String, Vec<String>> = patch["machine"]["kernel"]["modules"]
        .as_sequence()
        .expect("machine.kernel.modules")
        .iter()
        .map(|m| {
            let params = m["parameters"]
                .as_sequence()
                .map(|p| {
                    p.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (m["name"].as_str().expect("module name").to_owned(), params)
        })
        .collect();
    for want in ["drbd", "drbd_transport_tcp", "openvswitch", "dm_thin_pool"] {
        assert!(
            modules.contains_key(want),
            "the patch lacks the {want} module"
        );
    }
    assert_eq!(
        modules["drbd"],
        ["usermode_helper=disabled"],
        "drbd parameters"
    );
    let sysctls = &patch["machine"]["sysctls"];
    for (k, v) in [
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv4.conf.all.rp_filter", "0"),
    ] {
        assert_eq!(sysctls[k].as_str(), Some(v), "sysctl {k}");
    }
    let mounts = patch["machine"]["kubelet"]["extraMounts"]
        .as_sequence()
        .expect("extraMounts");
    assert!(
        mounts
            .iter()
            .any(|m| m["destination"].as_str() == Some("/var/lib/hearth")
                && m["options"]
                    .as_sequence()
                    .is_some_and(|o| o.iter().any(|x| x.as_str() == Some("rshared")))),
        "kubelet extraMount /var/lib/hearth (rshared)"
    );
    let lvm = patch["machine"]["files"]
        .as_sequence()
        .expect("machine.files")
        .iter()
        .find(|f| f["path"].as_str() == Some("/etc/lvm/lvm.conf"))
        .expect("an lvm.conf");
    assert!(
        lvm["content"]
            .as_str()
            .is_some_and(|c| c.contains("global_filter") && c.contains("r|^/dev/drbd.*|")),
        "the LVM filter must reject DRBD devices"
    );
}

// ---- helm, when there is one ----------------------------------------------------------------

fn on_path(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

#[test]
fn helm_lint_and_template_when_helm_is_installed() {
    let Some(helm) = on_path("helm") else {
        // helm is not installable on these machines; this is not a skip CI should fail on.
        eprintln!("skipping helm lint and helm template: no helm on PATH");
        return;
    };
    let o = run(Command::new(&helm).arg("lint").arg("--strict").arg(chart()));
    assert!(o.status.success(), "helm lint:\n{}", text(&o));
    let dir = tempfile::tempdir().expect("tempdir");
    let hr = &docs_of_kind("HelmRelease")[0].1;
    let vals = dir.path().join("values.yaml");
    std::fs::write(
        &vals,
        serde_yaml_ng::to_string(&hr["spec"]["values"]).expect("yaml"),
    )
    .expect("write");
    let mut rendered = Vec::new();
    for extra in [vec![], vec!["-f".to_owned(), vals.display().to_string()]] {
        let o = run(Command::new(&helm)
            .args(["template", "hearth", "--namespace", "cozy-hearth"])
            .arg(chart())
            .args(&extra));
        assert!(o.status.success(), "helm template {extra:?}:\n{}", text(&o));
        let f = dir.path().join(format!("rendered-{}.yaml", rendered.len()));
        std::fs::write(&f, &o.stdout).expect("write");
        rendered.push(f);
    }
    if let Some(bin) = venv_bin("helm_lint_and_template_when_helm_is_installed") {
        let unknown = kubernetes_validate(&bin, &rendered);
        let allowed = ["Certificate", "Issuer", "VMServiceScrape", "ServiceMonitor"];
        for k in unknown {
            assert!(
                allowed.contains(&k.as_str()),
                "rendered an unexpected kind {k}"
            );
        }
    }
}

/// Every `--flag` the chart passes to `hearth node` / `hearth coordinator` (including the
/// backend helper's) is one the binary's `--help` lists for that command.
#[test]
fn chart_args_are_flags_the_binary_accepts() {
    let templates = repo().join("deploy/charts/hearth/templates");
    let helpers = std::fs::read_to_string(templates.join("_helpers.tpl")).expect("helpers");
    let backend: Vec<String> = helpers
        .split("define \"hearth.backendArgs\"")
        .nth(1)
        .and_then(|s| s.split("{{- end -}}").next())
        .map(flags_in)
        .unwrap_or_default();
    assert!(backend.contains(&"--backend".to_owned()), "{backend:?}");
    for (file, command) in [
        ("node-daemonset.yaml", "node"),
        ("coordinator-deployment.yaml", "coordinator"),
    ] {
        let text = std::fs::read_to_string(templates.join(file)).expect("template");
        // The hearth container's args: from `- <command>` to the container's env.
        let args = text
            .split(&format!("- {command}\n"))
            .nth(1)
            .and_then(|s| s.split("env:").next())
            .unwrap_or_else(|| panic!("{file}: no `- {command}` args"));
        let help = run(Command::new(hearth_tests::hearth_bin()).args([command, "--help"]));
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        let mut flags = flags_in(args);
        flags.extend(backend.iter().cloned());
        assert!(flags.len() > 5, "{file}: {flags:?}");
        for f in flags {
            assert!(
                help.contains(&format!("{f} ")) || help.contains(&format!("{f}\n")),
                "{file}: hearth {command} has no flag {f}"
            );
        }
    }
}

fn flags_in(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("- --"))
        .map(|f| format!("--{}", f.split(['=', ' ']).next().unwrap_or_default()))
        .collect()
}
