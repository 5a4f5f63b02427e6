# Sourced by tests/cluster/run: installs Hearth the way docs/install.md tells a user to ("On plain
# Kubernetes"), with Secrets made by hand for the mTLS, the loopfile backend in the cluster's
# directory, and the images built here. Uses the variables run sets (D, node, repo, here, ports).

install_snapshot_controller() {
  local v=$("$here/versions" sidecar-images | awk '$1 == "snapshot-controller" {print $2}')
  local tag=${v##*:}
  local mod
  mod=$(cd "$here" && PATH=/usr/local/go/bin:$PATH go list -m -f '{{.Dir}}' "github.com/kubernetes-csi/external-snapshotter/client/v8")
  kubectl apply -f "$mod/config/crd/snapshot.storage.k8s.io_volumesnapshotclasses.yaml" \
    -f "$mod/config/crd/snapshot.storage.k8s.io_volumesnapshotcontents.yaml" \
    -f "$mod/config/crd/snapshot.storage.k8s.io_volumesnapshots.yaml" >>"$D/logs/hearth-install.log"
  mod=$(cd "$here" && PATH=/usr/local/go/bin:$PATH go list -m -f '{{.Dir}}' "github.com/kubernetes-csi/external-snapshotter/v8")
  kubectl apply -f "$mod/deploy/kubernetes/snapshot-controller/rbac-snapshot-controller.yaml" >>"$D/logs/hearth-install.log"
  # Upstream's Deployment, at the version built here, one replica.
  sed -e "s|image: registry.k8s.io/sig-storage/snapshot-controller:.*|image: $v|" \
    -e 's|replicas: 2|replicas: 1|' -e 's|minReadySeconds: 35|minReadySeconds: 0|' -e '/"--v=5"/d' \
    "$mod/deploy/kubernetes/snapshot-controller/setup-snapshot-controller.yaml" |
    kubectl apply -f - >>"$D/logs/hearth-install.log"
  : "$tag"
}

# Certificates a user makes for the chart's mTLS (docs/install.md): a CA, the coordinator's for
# hearth-coordinator.<namespace>.svc, one per node naming the node.
make_hearth_tls() {
  local ns=$1 t=$D/hearth-tls
  mkdir -p "$t"
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$t/ca.key" -out "$t/ca.crt" -days 2 -subj "/CN=hearth-ca"
  leaf() { # leaf NAME CN SAN
    ossl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$t/$1.key" -out "$t/$1.csr" -subj "/CN=$2"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' "$3" >"$t/$1.ext"
    ossl x509 -req -in "$t/$1.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial -out "$t/$1.crt" -days 2 -extfile "$t/$1.ext"
  }
  leaf coordinator "hearth-coordinator.$ns.svc" "DNS:hearth-coordinator.$ns.svc,DNS:hearth-coordinator.$ns.svc.cluster.local"
  leaf "$node" "$node" "DNS:$node"
  kubectl -n "$ns" create secret generic hearth-coordinator-tls \
    --from-file=tls.crt="$t/coordinator.crt" --from-file=tls.key="$t/coordinator.key" --from-file=ca.crt="$t/ca.crt" >>"$D/logs/hearth-install.log"
  kubectl -n "$ns" create secret generic hearth-node-tls \
    --from-file=ca.crt="$t/ca.crt" --from-file="$node.crt=$t/$node.crt" --from-file="$node.key=$t/$node.key" >>"$D/logs/hearth-install.log"
}

install_hearth() {
  local ns=hearth
  "$here/versions" check || exit 1
  install_snapshot_controller
  kubectl create namespace "$ns" >>"$D/logs/hearth-install.log"
  kubectl label namespace "$ns" pod-security.kubernetes.io/enforce=privileged >>"$D/logs/hearth-install.log"
  kubectl apply -f "$repo/deploy/crds/" >>"$D/logs/hearth-install.log"
  make_hearth_tls "$ns"
  cat >"$D/hearth-values.yaml" <<EOF
# What a user sets on a cluster whose kubelet root is not /var/lib/kubelet, plus the local image.
image: {repository: localhost/hearth-test/hearth, tag: dev, pullPolicy: Never}
kubeletDir: $D/kubelet
stateDir: $D/state
statusPort: $p_status
sidecars:
  nodeDriverRegistrar: {port: $p_reg}
  livenessProbe: {port: $p_live}
EOF
  # HEARTH_CLUSTER_VALUES: one more values file, after ours.
  if ! helm install hearth "$repo/deploy/charts/hearth" -n "$ns" -f "$D/hearth-values.yaml" \
    ${HEARTH_CLUSTER_VALUES:+-f "$HEARTH_CLUSTER_VALUES"} >>"$D/logs/hearth-install.log" 2>&1; then
    log "helm install failed:"; tail -20 "$D/logs/hearth-install.log" >&2; exit 1
  fi
  kubectl apply -f "$repo/deploy/examples/volumesnapshotclass.yaml" >>"$D/logs/hearth-install.log"
  kubectl -n kube-system rollout status deploy/snapshot-controller --timeout=120s >>"$D/logs/hearth-install.log"
  if ! kubectl -n "$ns" rollout status deploy/hearth-coordinator --timeout=240s >>"$D/logs/hearth-install.log" 2>&1; then
    log "the coordinator did not become ready"; kubectl -n "$ns" get pods -o wide >&2; exit 1
  fi
  if ! wait_for 180 "csi.hearth.dev on CSINode $node" \
    sh -c "kubectl get csinode '$node' -o jsonpath='{.spec.drivers[*].name}' | grep -qw csi.hearth.dev"; then
    kubectl -n "$ns" get pods -o wide >&2
    kubectl -n "$ns" describe ds/hearth-node >&2
    exit 1
  fi
  kubectl -n "$ns" rollout status ds/hearth-node --timeout=120s >>"$D/logs/hearth-install.log"
}
