#!/usr/bin/env bash
# Hand-run test of animus on a real Kubernetes cluster made on this machine (too slow for CI,
# whose lighter check validates the rendered manifests offline). It:
#   1. builds kube-apiserver, -controller-manager, -scheduler, kubelet and kubectl from Debian 12's
#      `kubernetes` source package (cached in /var/cache/animus-test/kubernetes-<version>-<hash>/,
#      built aside and renamed), and installs etcd, containerd, runc and the CNI plugins from Debian;
#   2. makes a one-node cluster inside a network namespace of its own, in a PID and mount namespace
#      of its own (so every process, mount and pod network it makes ends with it): openssl
#      certificates, etcd, the control plane, containerd (its own config, root, state and socket
#      under the temp dir), the kubelet, static hostPath PVs behind a StorageClass;
#   3. imports a pause image (built here) and the animus image (image/build-image.sh);
#   4. runs the scenario of issue 13 with the real CLI, Letta and Telegram stood in by
#      test/helpers on the node's address: two agents deployed locally, rendered, pushed, Ready;
#      `animus send --wait` through `kubectl exec`; status/health with pod state; a SIGKILLed
#      runtime restarted; data surviving a deleted pod; `kubectl scale --replicas=2`; a bad .env.
# One line per check (PASS/FAIL, with its figure); exit 1 when any check fails.
#
#   sudo test/live/kubernetes/cluster.sh [--keep]   (--keep: the cluster stays up until TMP/release exists)
# Needs root, network to the Debian mirror (apt), ~3 GB in /var/cache, `npm run build` done.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
script=$root/test/live/kubernetes/cluster.sh
NODE_IP=10.0.77.2
POD_SUBNET=10.244.0.0/24
NODE_NAME=animus-node
log() { printf '[cluster %s +%ss] %s\n' "$(date +%T)" "$SECONDS" "$*" >&2; }

# --------------------------------------------------------------------------------------------
# Inside: PID 1 of the cluster's PID namespace, in its network and (private) mount namespace.
# --------------------------------------------------------------------------------------------
inside() {
  T=$1 kbin=$2 image=$3 pause_image=$4 keep=$5
  export PATH=$kbin:$PATH KUBECONFIG=$T/pki/admin.kubeconfig
  local pids=() failed=0
  phase() { local name=$1 start=$2; printf 'PHASE %-28s %4ss\n' "$name" "$((SECONDS - start))" | tee -a "$T/phases"; }
  check() { # check NAME STATUS(0 = pass) FIGURE
    local verdict=PASS
    [ "$2" = 0 ] || { verdict=FAIL; failed=1; }
    printf '%s  %-44s %s\n' "$verdict" "$1" "$3" | tee -a "$T/checks"
  }
  until_ok() { # until_ok SECONDS COMMAND...: retries once a second
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $deadline ] || return 1; sleep 1; done
  }
  until_ready() { # until_ready POD: the StatefulSet's new pod exists and is Ready (kubectl wait fails on a pod not made yet)
    until_ok 180 sh -c "kubectl -n animus get pod $1 -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
  }
  daemon() { # daemon NAME COMMAND...: in the background, its output in $T/logs/NAME.log
    "${@:2}" >"$T/logs/$1.log" 2>&1 &
    pids+=($!)
  }

  # The host's /run, /var/log and /var/lib/cni are not touched: tmpfs and binds, in this mount namespace only.
  mount --make-rprivate /
  mount -t tmpfs -o mode=0755 tmpfs /run
  # `ip netns exec` mounted a fresh /sys for the namespace, without the host's cgroup mounts: the
  # same hierarchies again (the kubelet and runc find them in this namespace's mountinfo).
  mount -t tmpfs -o mode=0755 cgroup /sys/fs/cgroup
  local line type opts dir
  while read -r line; do
    read -r _ dir type opts _ <<<"$line"
    mkdir -p "$dir"
    if [ "$type" = cgroup2 ]; then mount -t cgroup2 cgroup2 "$dir"; else mount -t cgroup -o "$(tr ',' '\n' <<<"$opts" | grep -vxE 'rw|relatime' | paste -sd,)" cgroup "$dir"; fi
  done <"$T/cgroup-mounts"
  mkdir -p "$T/varlog" "$T/cni-cache" /run/netns
  mount --bind "$T/varlog" /var/log
  mount --bind "$T/cni-cache" /var/lib/cni
  mkdir -p "$T/logs" "$T/pki" "$T/etcd" "$T/containerd" "$T/kubelet" "$T/cni/net.d" "$T/pv"

  local t=$SECONDS
  pki "$T/pki"
  phase certificates "$t"

  t=$SECONDS
  daemon etcd etcd --name animus --data-dir "$T/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster animus=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381
  until_ok 60 etcdctl --endpoints http://127.0.0.1:2379 endpoint health || { tail "$T/logs/etcd.log"; return 1; }
  phase etcd "$t"

  t=$SECONDS
  local p=$T/pki
  daemon kube-apiserver nice kube-apiserver --etcd-servers http://127.0.0.1:2379 \
    --advertise-address "$NODE_IP" --bind-address 0.0.0.0 --secure-port 6443 --insecure-port 0 --cert-dir "$T/apiserver-certs" \
    --client-ca-file "$p/ca.crt" --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
    --kubelet-client-certificate "$p/apiserver-kubelet.crt" --kubelet-client-key "$p/apiserver-kubelet.key" \
    --kubelet-certificate-authority "$p/ca.crt" --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$p/sa.pub" \
    --service-account-signing-key-file "$p/sa.key" --service-cluster-ip-range 10.96.0.0/24 \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction --allow-privileged=false
  until_ok 120 kubectl get --raw /readyz || { tail "$T/logs/kube-apiserver.log"; return 1; }
  phase kube-apiserver "$t"

  t=$SECONDS
  daemon kube-controller-manager nice kube-controller-manager --kubeconfig "$p/admin.kubeconfig" \
    --authentication-kubeconfig "$p/admin.kubeconfig" --authorization-kubeconfig "$p/admin.kubeconfig" \
    --service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" --cert-dir "$T/cm-certs" \
    --leader-elect=false --use-service-account-credentials=false --port 0
  daemon kube-scheduler nice kube-scheduler --kubeconfig "$p/admin.kubeconfig" \
    --authentication-kubeconfig "$p/admin.kubeconfig" --authorization-kubeconfig "$p/admin.kubeconfig" \
    --cert-dir "$T/scheduler-certs" --leader-elect=false --port 0
  # The controller manager is up when it has made the namespace's default service account.
  until_ok 120 kubectl -n default get serviceaccount default || { tail "$T/logs/kube-controller-manager.log"; return 1; }
  phase controller-manager+scheduler "$t"

  t=$SECONDS
  containerd_config >"$T/containerd/config.toml"
  cni_config >"$T/cni/net.d/10-animus.conflist"
  # Kubernetes sets the containers' limits below the hard limit this unprivileged-ish host allows.
  ulimit -n "$(ulimit -Hn)"
  daemon containerd containerd --config "$T/containerd/config.toml"
  until_ok 60 ctr --address "$T/containerd/containerd.sock" version || { tail "$T/logs/containerd.log"; return 1; }
  phase containerd "$t"

  t=$SECONDS
  kubelet_config >"$T/kubelet/config.yaml"
  daemon kubelet nice kubelet --config "$T/kubelet/config.yaml" --kubeconfig "$p/kubelet.kubeconfig" \
    --container-runtime remote --container-runtime-endpoint "unix://$T/containerd/containerd.sock" \
    --root-dir "$T/kubelet" --cert-dir "$T/kubelet/pki" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --pod-infra-container-image localhost/pause:animus --v 1
  until_ok 180 sh -c "kubectl get node $NODE_NAME -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True" || {
    grep -E '^[FE][0-9]{4} ' "$T/logs/kubelet.log" | tail -8 >&2; return 1
  }
  phase kubelet+node-Ready "$t"

  t=$SECONDS
  ctr --address "$T/containerd/containerd.sock" -n k8s.io images import --index-name localhost/pause:animus "$pause_image" >/dev/null
  ctr --address "$T/containerd/containerd.sock" -n k8s.io images import "$image" >/dev/null
  phase image-import "$t"
  storage "$T/pv"

  t=$SECONDS
  scenario || failed=1
  [ -z "${ANIMUS_CLUSTER_LOGS:-}" ] || cp -a "$T/logs" "$ANIMUS_CLUSTER_LOGS" 
  phase scenario "$t"
  if [ "$keep" = 1 ]; then
    log "cluster kept until $T/release exists (inside: nsenter -a -t <pid of this PID 1 outside>; KUBECONFIG=$KUBECONFIG)"
    until [ -e "$T/release" ]; do sleep 2; done
  fi
  return "$failed"
}

pki() {
  local d=$1
  cd "$d"
  openssl genrsa -out ca.key 2048 2>/dev/null
  openssl req -x509 -new -key ca.key -subj /CN=animus-test-ca -days 2 -out ca.crt 2>/dev/null
  cert() { # cert NAME SUBJECT [SAN]
    openssl genrsa -out "$1.key" 2048 2>/dev/null
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
    if [ -n "${3:-}" ]; then printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" >"$1.ext"; else printf 'extendedKeyUsage=clientAuth\n' >"$1.ext"; fi
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  }
  cert apiserver /CN=kube-apiserver "IP:$NODE_IP,IP:127.0.0.1,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
  cert apiserver-kubelet "/O=system:masters/CN=kube-apiserver-kubelet-client"
  cert kubelet-serving "/CN=$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME"
  cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  cert admin "/O=system:masters/CN=animus-admin"
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  for who in admin kubelet; do
    cat >"$who.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: animus, cluster: {server: "https://$NODE_IP:6443", certificate-authority: "$d/ca.crt"}}]
users: [{name: $who, user: {client-certificate: "$d/$who.crt", client-key: "$d/$who.key"}}]
contexts: [{name: animus-test, context: {cluster: animus, user: $who}}]
current-context: animus-test
EOF
  done
  cd - >/dev/null
}

containerd_config() {
  cat <<EOF
version = 2
root = "$T/containerd/root"
state = "$T/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$T/containerd/containerd.sock"
[ttrpc]
  address = "$T/containerd/containerd.sock.ttrpc"
[debug]
  address = "$T/containerd/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$T/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:animus"
  # Without CAP_SYS_RESOURCE a container may not lower its oom_score_adj below containerd's.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$T/cni/net.d"
EOF
}

cni_config() {
  cat <<EOF
{"cniVersion": "0.4.0", "name": "animus-pods", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$T/cni/ipam", "ranges": [[{"subnet": "$POD_SUBNET"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "loopback"}
]}
EOF
}

kubelet_config() {
  cat <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$T/pki/ca.crt"}
authorization: {mode: Webhook}
tlsCertFile: "$T/pki/kubelet-serving.crt"
tlsPrivateKeyFile: "$T/pki/kubelet-serving.key"
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
failSwapOn: false
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
serializeImagePulls: false
# The disk is shared: evict only when it is really full, never for the image file system's usage.
evictionHard: {memory.available: "200Mi", nodefs.available: "2%", imagefs.available: "2%"}
imageGCHighThresholdPercent: 100
EOF
}

storage() { # A default StorageClass and static hostPath PVs, each a folder owned by the image's uid.
  local d=$1 i
  {
    printf 'apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: animus-local, annotations: {storageclass.kubernetes.io/is-default-class: "true"}}\nprovisioner: kubernetes.io/no-provisioner\nvolumeBindingMode: WaitForFirstConsumer\nreclaimPolicy: Retain\n'
    for i in 1 2 3 4 5 6; do
      mkdir -p "$d/pv$i"; chown 10001:10001 "$d/pv$i"; chmod 0700 "$d/pv$i"
      printf -- '---\napiVersion: v1\nkind: PersistentVolume\nmetadata: {name: animus-pv%s}\nspec:\n  capacity: {storage: 1Gi}\n  accessModes: [ReadWriteOnce]\n  storageClassName: animus-local\n  persistentVolumeReclaimPolicy: Retain\n  hostPath: {path: "%s", type: Directory}\n' "$i" "$d/pv$i"
    done
  } | kubectl apply -f - >/dev/null
}

# --------------------------------------------------------------------------------------------
# The scenario (inside).
# --------------------------------------------------------------------------------------------
scenario() {
  set +e
  export ANIMUS_HOME=$T/home ANIMUS_CONFIG_DIR=$T/config PM2_HOME=$T/pm2
  local animus=(node "$root/bin/animus.js") ns=animus key=sk-let-4f9a1c2e8b7d
  local a1=agent-3f1c9a2e-7b4d-4e8a-9c1f-2a6b8d4e0f13 a2=agent-8d2e4f6a-1c3b-4a5d-8e7f-9b0c1d2e3f45
  local tok1=7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q tok2=7012398746:AAGr4la0Yc3MxQn5Su8Zd2Wo9Ie7Kt6Hf1R
  local t out

  node "$T/stand-ins.mjs" --host "$NODE_IP" --api-key "$key" --token "$tok1" --token "$tok2" --state "$T/stand-ins.json" >"$T/logs/stand-ins.log" 2>&1 &
  pids+=($!)
  until_ok 30 test -s "$T/stand-ins.json" || { cat "$T/logs/stand-ins.log"; return 1; }
  local letta tg1 tg2 control
  letta=$(node -p "require('$T/stand-ins.json').letta") tg1=$(node -p "require('$T/stand-ins.json').telegram[0]")
  tg2=$(node -p "require('$T/stand-ins.json').telegram[1]") control=$(node -p "require('$T/stand-ins.json').control")
  stats() { node -e "fetch('$control/stats').then(r=>r.json()).then(s=>console.log(eval(process.argv[1])))" "$1"; }

  t=$SECONDS
  "${animus[@]}" init >/dev/null
  local id tok api
  for id in "$a1" "$a2"; do
    if [ "$id" = "$a1" ]; then tok=$tok1 api=$tg1; else tok=$tok2 api=$tg2; fi
    AGENT_API_KEY=$key "${animus[@]}" deploy "$id" --mode live --endpoint "$letta" \
      --env "TELEGRAM_BOT_TOKEN=$tok" --env "TELEGRAM_API_ROOT=$api" --env TELEGRAM_OWNER_ID=424242 >/dev/null
    "${animus[@]}" settings set --agent "$id" plugins.telegram_bot.enabled true >/dev/null
  done
  "${animus[@]}" start "$a1" "$a2" >/dev/null 2>&1
  out=$("${animus[@]}" --json send "$a1" "before the push" --wait --timeout 60 2>&1 || true)
  check "two agents deployed and answering locally" "$(grep -q '"reply"' <<<"$out"; echo $?)" "$((SECONDS - t)) s"

  t=$SECONDS
  "${animus[@]}" kubernetes render "$a1" "$a2" --namespace "$ns" --storage-class animus-local --out "$T/k8s" >/dev/null
  kubectl create namespace "$ns" >/dev/null
  out=$(kubectl apply --dry-run=server -k "$T/k8s" 2>&1); local rc=$?
  check "rendered manifests accepted by the 1.20 API server" "$rc" "$(grep -c 'created\|configured' <<<"$out") objects (dry run)"
  [ "$rc" = 0 ] || printf '%s\n' "$out" | sed 's/^/      /'

  local ready_figures=() pushed=0
  for id in "$a1" "$a2"; do
    t=$SECONDS
    if out=$("${animus[@]}" kubernetes push "$id" --namespace "$ns" --storage-class animus-local --timeout 300 2>&1); then
      ready_figures+=("$id $((SECONDS - t)) s"); pushed=$((pushed + 1))
    else
      ready_figures+=("$id failed: $(tail -1 <<<"$out")")
    fi
  done
  check "both pushed and Ready" "$([ $pushed = 2 ]; echo $?)" "${ready_figures[*]}"
  [ $pushed = 2 ] || { pod_debug "$ns"; return 1; }
  local pod1 pod2
  pod1=animus-${a1#agent-}-0 pod2=animus-${a2#agent-}-0

  t=$SECONDS
  out=$("${animus[@]}" --json send "$a1" "hello in the cluster" --wait --timeout 60 2>&1 || true)
  check "animus send --wait (kubectl exec) gets the reply" "$(grep -q '"reply": "reply from' <<<"$out"; echo $?)" "$((SECONDS - t)) s: $(grep -o '"reply": "[^"]*"' <<<"$out" | head -1)"
  out=$(kubectl -n "$ns" exec "$pod2" -c runtime -- animus --json send "$a2" "hello agent two" --wait --timeout 60 2>&1 || true)
  check "send --wait in pod two" "$(grep -q '"reply": "reply from' <<<"$out"; echo $?)" "$(grep -o '"reply": "[^"]*"' <<<"$out" | head -1)"

  out=$("${animus[@]}" --json status 2>&1 || true)
  check "animus status shows the pod state" "$(node -e "const s=JSON.parse(process.argv[1]);const a=(s.agents??s).filter(x=>JSON.stringify(x).includes('kubernetes')&&JSON.stringify(x).includes('online'));process.exit(a.length===2?0:1)" "$out" 2>/dev/null; echo $?)" \
    "$(node -e "const s=JSON.parse(process.argv[1]);console.log((s.agents??s).map(x=>(x.id??'').slice(0,14)+'='+(x.state??x.process?.state)+'/'+(x.manager??x.process?.manager)).join(' '))" "$out" 2>/dev/null || head -c 300 <<<"$out")"
  out=$("${animus[@]}" --json health "$a1" 2>&1); rc=$?
  check "animus health on a pod" "$rc" "exit $rc, $(head -c 400 <<<"$out" | tr '\n' ' ')"

  # A SIGKILLed runtime: tini (PID 1) exits with it, the kubelet starts the container again.
  t=$SECONDS
  local before after
  log "pod one before the kill: $(kubectl -n "$ns" get pod "$pod1" -o jsonpath='restarts={.status.containerStatuses[0].restartCount} last={.status.containerStatuses[0].lastState.terminated.reason}/{.status.containerStatuses[0].lastState.terminated.exitCode}')"
  before=$(kubectl -n "$ns" get pod "$pod1" -o jsonpath='{.status.containerStatuses[0].restartCount}')
  # The runtime is tini's child (PID 1 is tini, whose own command line names main.js too).
  kubectl -n "$ns" exec "$pod1" -c runtime -- sh -c 'for p in /proc/[0-9]*; do [ "${p#/proc/}" != 1 ] && grep -qa "^node" "$p/cmdline" && grep -qa runtime/main.js "$p/cmdline" && kill -KILL "${p#/proc/}" && echo "killed ${p#/proc/}"; done' 2>&1 | sed 's/^/      /'
  until_ok 120 sh -c "[ \$(kubectl -n $ns get pod $pod1 -o jsonpath='{.status.containerStatuses[0].restartCount}') -gt $before ]" || true
  kubectl -n "$ns" wait --for=condition=Ready "pod/$pod1" --timeout=180s >/dev/null 2>&1; rc=$?
  after=$(kubectl -n "$ns" get pod "$pod1" -o jsonpath='{.status.containerStatuses[0].restartCount}')
  out=$("${animus[@]}" --json send "$a1" "after the kill" --wait --timeout 60 2>&1 || true)
  check "SIGKILLed runtime restarted and answering" "$([ $rc = 0 ] && [ "$after" -gt "$before" ] && grep -q '"reply"' <<<"$out"; echo $?)" \
    "restarts $before -> $after (last exit: $(kubectl -n "$ns" get pod "$pod1" -o jsonpath='{.status.containerStatuses[0].lastState.terminated.exitCode} {.status.containerStatuses[0].lastState.terminated.reason}')), Ready again in $((SECONDS - t)) s"

  # Data survives the pod: the messages so far are still in the volume's database.
  local count_before count_after
  count_before=$(kubectl -n "$ns" exec "$pod1" -c runtime -- node -e "const D=require('/opt/animus/node_modules/better-sqlite3');const d=new D('/var/lib/animus/$a1/animus.db',{readonly:true});console.log(d.prepare('select count(*) n from messages').get().n)" 2>&1)
  t=$SECONDS
  kubectl -n "$ns" delete pod "$pod1" --wait=true >/dev/null
  until_ready "$pod1"
  count_after=$(kubectl -n "$ns" exec "$pod1" -c runtime -- node -e "const D=require('/opt/animus/node_modules/better-sqlite3');const d=new D('/var/lib/animus/$a1/animus.db',{readonly:true});console.log(d.prepare('select count(*) n from messages').get().n)" 2>&1)
  out=$("${animus[@]}" --json queue list "$a1" --status all 2>&1 | node -e "const q=JSON.parse(require('fs').readFileSync(0,'utf8'));const l=q.items??q;console.log(l.length+' items: '+l.map(i=>i.status).join(','))" 2>&1)
  check "data survives the pod being deleted" "$([ -n "$count_before" ] && [ "$count_before" = "$count_after" ] && [ "$count_before" -ge 3 ] 2>/dev/null; echo $?)" \
    "messages $count_before -> $count_after, new pod Ready in $((SECONDS - t)) s; queue via exec: $(head -c 160 <<<"$out" | tr '\n' ' ')"

  # Two replicas: the second pod gets its own (empty) volume and must not run the agent.
  t=$SECONDS
  local polls_before
  polls_before=$(stats 's.letta.messages')
  kubectl -n "$ns" scale statefulset "animus-${a1#agent-}" --replicas=2 >/dev/null
  local pod1b=animus-${a1#agent-}-1
  until_ok 120 sh -c "kubectl -n $ns get pod $pod1b -o jsonpath='{.status.containerStatuses[0].state.running.startedAt}{.status.containerStatuses[0].lastState.terminated.exitCode}' | grep -q ." || true
  sleep 15
  local second_ready second_state second_log
  second_ready=$(kubectl -n "$ns" get pod "$pod1b" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>&1)
  second_state=$(kubectl -n "$ns" get pod "$pod1b" -o jsonpath='{.status.containerStatuses[0].state}{" restarts="}{.status.containerStatuses[0].restartCount}' 2>&1)
  second_log=$(kubectl -n "$ns" logs "$pod1b" -c runtime --tail=3 2>&1 | tail -1)
  out=$("${animus[@]}" --json send "$a1" "with two replicas" --wait --timeout 60 2>&1 || true)
  local answered=$(( $(stats 's.letta.messages') - polls_before ))
  check "scale --replicas=2: one broker answers" "$([ "$second_ready" != True ] && [ "$answered" = 1 ] && grep -q '"reply"' <<<"$out"; echo $?)" \
    "replica 1 Ready=$second_ready $second_state; Letta got $answered message(s); its log: $(head -c 220 <<<"$second_log")"
  kubectl -n "$ns" scale statefulset "animus-${a1#agent-}" --replicas=1 >/dev/null
  kubectl -n "$ns" wait --for=delete "pod/$pod1b" --timeout=120s >/dev/null 2>&1 || true

  # A bad .env: agent two's Secret gets a placeholder key; its new pod stays up, not ready, reasons in its log.
  t=$SECONDS
  local good bad
  good=$(kubectl -n "$ns" get secret "animus-${a2#agent-}-env" -o jsonpath='{.data.\.env}')
  bad=$(printf '%s' "$good" | base64 -d | sed 's/^AGENT_API_KEY=.*/AGENT_API_KEY=your_key_here/' | base64 -w0)
  kubectl -n "$ns" patch secret "animus-${a2#agent-}-env" -p "{\"data\":{\".env\":\"$bad\"}}" >/dev/null
  kubectl -n "$ns" delete pod "$pod2" --wait=true >/dev/null
  until_ok 120 sh -c "kubectl -n $ns logs $pod2 -c runtime 2>/dev/null | grep -q 'not ready'" || true
  local bad_ready bad_log bad_restarts
  bad_ready=$(kubectl -n "$ns" get pod "$pod2" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')
  bad_restarts=$(kubectl -n "$ns" get pod "$pod2" -o jsonpath='{.status.containerStatuses[0].restartCount}')
  bad_log=$(kubectl -n "$ns" logs "$pod2" -c runtime 2>&1 | grep 'not ready' | tail -1)
  check "bad .env: pod not ready, reasons in kubectl logs" "$([ "$bad_ready" = False ] && [ -n "$bad_log" ]; echo $?)" \
    "Ready=$bad_ready restarts=$bad_restarts in $((SECONDS - t)) s; log: $(head -c 220 <<<"$bad_log")"
  out=$("${animus[@]}" --json status "$a2" 2>&1)
  check "animus status shows the not-ready pod" "$(node -e "process.exit(JSON.parse(process.argv[1])[0].state==='errored'?0:1)" "$out" 2>/dev/null; echo $?)" \
    "$(node -e "const [a]=JSON.parse(process.argv[1]);console.log(a.id.slice(0,14)+' state='+a.state+' manager='+a.manager)" "$out" 2>/dev/null || head -c 200 <<<"$out")"
  kubectl -n "$ns" patch secret "animus-${a2#agent-}-env" -p "{\"data\":{\".env\":\"$good\"}}" >/dev/null
  kubectl -n "$ns" delete pod "$pod2" --wait=true >/dev/null
  until_ready "$pod2"; rc=$?
  check "good .env again: Ready" "$rc" "$((SECONDS - t)) s from the bad Secret"

  # The kubernetes process manager: restart deletes the pod and waits for the new one to be ready.
  t=$SECONDS
  out=$("${animus[@]}" --json restart "$a2" 2>&1); rc=$?
  check "animus restart (kubernetes manager)" "$rc" "exit $rc in $((SECONDS - t)) s: $(tr -d '\n ' <<<"$out" | head -c 160)"
}

pod_debug() {
  kubectl -n "$1" get pods,pvc -o wide 2>&1 | sed 's/^/      /'
  local pod
  for pod in $(kubectl -n "$1" get pods -o name 2>/dev/null); do
    kubectl -n "$1" describe "$pod" 2>&1 | tail -15 | sed 's/^/      /'
    kubectl -n "$1" logs "$pod" --all-containers --tail=10 2>&1 | sed 's/^/      /'
  done
}

if [ "${1:-}" = --inside ]; then
  shift
  T=$1 CGROUP=$6
  inside "$@"
  exit $?
fi

# --------------------------------------------------------------------------------------------
# Outside: packages, the Kubernetes build, the images, the namespaces; cleanup by pid.
# --------------------------------------------------------------------------------------------
keep=0
[ "${1:-}" = --keep ] && keep=1
[ "$(id -u)" = 0 ] || { echo "cluster.sh: run as root (namespaces, mounts, containerd)" >&2; exit 2; }
[ -f "$root/dist/cli/main.cjs" ] || { echo "cluster.sh: dist/ is missing: run \`npm run build\` first" >&2; exit 3; }

T=$(mktemp -d /tmp/animus-cluster.XXXXXX)
chmod 0755 "$T"
NETNS=animus-k8s-$$
CGROUP=animus-k8s-$$
src_list=
inner=
made_cni_cache=
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$inner" ] && kill -0 "$inner" 2>/dev/null; then
    # unshare's child is PID 1 of the cluster's PID namespace: killing it ends every process in it,
    # and with them the mount namespace and its mounts.
    kill -KILL "$inner" 2>/dev/null || true
    wait "$inner" 2>/dev/null || true
  fi
  local dir
  for dir in /sys/fs/cgroup/*/"$CGROUP"; do
    [ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  ip netns del "$NETNS" 2>/dev/null || true
  [ -n "$made_cni_cache" ] && rmdir /var/lib/cni 2>/dev/null || true
  # A build cut short leaves no half-made cache entry; the sources file of this run goes, and apt forgets it.
  [ -n "${build:-}" ] && rm -rf "$build"
  [ -n "$src_list" ] && rm -f "$src_list" && apt-get update -qq 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

t=$SECONDS
log "Debian packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends etcd-server etcd-client containerd runc containernetworking-plugins \
  golang-go rsync jq dpkg-dev gcc libc6-dev openssl iproute2 debootstrap util-linux >/dev/null
printf 'PHASE %-28s %4ss\n' packages "$((SECONDS - t))" | tee -a "$T/phases"

t=$SECONDS
# The source package's version, from its binary kubernetes-client (no deb-src needed to reuse the cache).
version=$(apt-cache policy kubernetes-client | awk '/Candidate:/ {print $2; exit}')
[ -n "$version" ] && [ "$version" != "(none)" ] || { echo "cluster.sh: no kubernetes package in the apt sources (Debian 12 has 1.20.2)" >&2; exit 1; }
targets="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet cmd/kubectl"
key=$(printf '%s\n%s\n%s\n' "$version" "$targets" "$(go version)" | sha256sum | cut -c1-12)
cache=/var/cache/animus-test/kubernetes-$version-$key
if [ ! -f "$cache/.complete" ]; then
  # `apt-get source` needs a deb-src line: one for the same mirror, in a sources file of this run only.
  if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || echo http://deb.debian.org/debian)
    src_list=/etc/apt/sources.list.d/animus-cluster-test-$$.sources
    printf 'Types: deb-src\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" >"$src_list"
    apt-get update -qq
  fi
  log "building Kubernetes $version ($targets) into $cache"
  mkdir -p /var/cache/animus-test
  build=$(mktemp -d /var/cache/animus-test/.kubernetes.XXXXXX)
  (cd "$build" && apt-get source -qq "kubernetes=$version" >/dev/null 2>"$build/source.log") || { tail "$build/source.log" >&2; rm -rf "$build"; exit 1; }
  srcdir=$(find "$build" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
  mkdir -p "$srcdir/.go/src/k8s.io" && ln -sfn ../../.. "$srcdir/.go/src/k8s.io/kubernetes"
  if ! (cd "$srcdir" && GOPATH=$srcdir/.go GOCACHE=$build/gocache HOME=$build CGO_ENABLED=0 nice -n 19 make WHAT="$targets" >"$build/make.log" 2>&1); then
    tail -30 "$build/make.log" >&2; rm -rf "$build"; exit 1
  fi
  mkdir -p "$build/out/bin"
  for bin in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do cp "$srcdir/_output/bin/$bin" "$build/out/bin/"; done
  touch "$build/out/.complete"
  rm -rf "$cache"; mv "$build/out" "$cache"; rm -rf "$build"; build=
fi
kbin=$cache/bin
printf 'PHASE %-28s %4ss\n' "kubernetes-build($version)" "$((SECONDS - t))" | tee -a "$T/phases"

t=$SECONDS
log "images: pause (built here) and animus (image/build-image.sh)"
pause_image=$T/pause.oci.tar
bash "$root/test/live/kubernetes/pause-image.sh" "$pause_image" localhost/pause:animus >/dev/null
image=$(bash "$root/image/build-image.sh" --out "$T/animus.oci.tar" 2>"$T/build-image.log") || { tail "$T/build-image.log" >&2; exit 1; }
"$root/node_modules/.bin/esbuild" "$root/test/live/kubernetes/stand-ins.ts" --bundle --platform=node --format=esm --target=node20 \
  --outfile="$T/stand-ins.mjs" --log-level=warning
printf 'PHASE %-28s %4ss\n' image-build "$((SECONDS - t))" | tee -a "$T/phases"

ip netns add "$NETNS"
ip -n "$NETNS" link set lo up
# The node's address on a veth pair whose both ends stay in the namespace (no dummy module here).
ip -n "$NETNS" link add eth0 type veth peer name eth0-peer
ip -n "$NETNS" addr add "$NODE_IP/24" dev eth0
ip -n "$NETNS" link set eth0-peer up
ip -n "$NETNS" link set eth0 up
ip -n "$NETNS" route add default dev eth0
ip netns exec "$NETNS" sysctl -qw net.ipv4.ip_forward=1
if [ ! -e /var/lib/cni ]; then mkdir /var/lib/cni; made_cni_cache=1; fi
grep -E '^\S+ /sys/fs/cgroup/\S+ cgroup2? ' /proc/self/mounts >"$T/cgroup-mounts"
for ctrl in /sys/fs/cgroup/*/; do [ -e "$ctrl/cgroup.procs" ] && mkdir -p "$ctrl$CGROUP"; done

ip netns exec "$NETNS" unshare --pid --fork --mount --mount-proc --kill-child=SIGKILL \
  bash "$script" --inside "$T" "$kbin" "$image" "$pause_image" "$keep" "$CGROUP" &
inner=$!
rc=0
wait "$inner" || rc=$?
inner=
printf '\n'
cat "$T/phases" 2>/dev/null
grep -c '^PASS' "$T/checks" 2>/dev/null | sed 's/^/passed: /' || true
grep -c '^FAIL' "$T/checks" 2>/dev/null | sed 's/^/failed: /' || true
[ "$rc" = 0 ] && ! grep -q '^FAIL' "$T/checks" 2>/dev/null
