"""A real node for the local cluster: containerd + runc + CNI bridge, kubelet, kube-proxy and CoreDNS.

Pods scheduled to it run as containers from images built here (`make images`, imported into containerd and
tagged as the charts name them). The kwok nodes stay beside it for scale tests; the real node carries the taint
`langflow-platform.dev/real-node=true:NoSchedule`, so only pods that tolerate it (the harness overlay
tests/harness/values/real-node.yaml) run here and every other pod keeps landing on kwok.

Network safety (required on this machine): the pods live on bridge `lfp0` (10.245.0.0/24, the node address
10.245.0.1 on it), host-local IPAM with a route to the Service range only (no default route), no masquerade,
and an nftables table `inet lfp_node` that drops forwarding between the bridge and any other interface, drops
what a pod sends to the host on any address but the node's, and answers the node daemons' ports only on `lo`
and the bridge. Pods reach the API server through the `kubernetes` Service (an EndpointSlice to a socat relay
on 10.245.0.1:6443 -> the loopback apiserver) and DNS through `kube-dns` (10.96.0.10 -> CoreDNS on the node
address; cluster.local only, nothing is forwarded off the machine).

`down()` leaves nothing behind: processes, container tasks and shims, mounts, network namespaces, veths, the
bridge, firewall tables and chains, kubelet's cgroups, and the host sysctls kubelet and the bridge plugin change
(recorded before start, restored after). `leftovers()` lists whatever is still there, for tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .daemons import DaemonState, pid_alive
from .paths import ROOT, tool
from .servers import Process, free_port, wait_for

if TYPE_CHECKING:
    from .cluster import Cluster

NODE_NAME = "lfp-node"
BRIDGE = "lfp0"
NODE_SUBNET = "10.245.0.0/24"
NODE_IP = "10.245.0.1"
DNS_SERVICE_IP = "10.96.0.10"
SERVICE_RANGE = "10.96.0.0/16"  # the control plane's --service-cluster-ip-range
KWOK_POD_RANGE = "10.244.0.0/16"  # kwok's fake pod addresses (no host behind them)
APISERVER_RELAY_PORT = 6443
KUBELET_PORT = 10250
NFT_TABLE = "lfp_node"
OWN_NFT_TABLES = (f"inet {NFT_TABLE}", "ip kube-proxy", "ip6 kube-proxy")  # ours and kube-proxy's (nftables mode)
CNI_NETWORK = "lfp"
CNI_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
TAINT_KEY = "langflow-platform.dev/real-node"
NODE_LABEL = "langflow-platform.dev/node"
SANDBOX_IMAGE = "registry.k8s.io/pause:3.10"
# Volumes for pods on the real node: Kubernetes' own `local` volumes (StorageClass with no provisioner, bound when
# the pod is scheduled), a pool of directories on this machine; kubelet applies the pod's fsGroup to them (it does
# not to the hostPath volumes kwok's simulated provisioner makes). Released volumes are wiped and made Available.
STORAGE_CLASS = "lfp-node-local"
VOLUME_POOL = 24
VOLUME_SIZE = "20Gi"
# sysctls kubelet (protectKernelDefaults: false) and the CNI bridge plugin (ip_forward) change on the host
SYSCTLS = ("kernel.panic", "kernel.panic_on_oops", "vm.overcommit_memory", "net.ipv4.ip_forward")
# registries the charts' images name: each points at a closed loopback port, so a pull fails at once, locally
REGISTRIES = ("docker.io", "registry-1.docker.io", "registry.k8s.io", "ghcr.io", "quay.io", "gcr.io", "public.ecr.aws")
# paths outside the node's folder that kubelet, libcni or containerd may create (removed at down if they were absent)
HOST_PATHS = ("/var/lib/kubelet", "/var/lib/cni", "/etc/cni", "/run/containerd", "/var/log/containers", "/var/log/pods")
COMPONENTS = ("containerd", "apiserver-relay", "coredns", "kube-proxy", "kubelet")
# which node folder holds the bridge now: on tmpfs, so it is gone after a reboot exactly when the bridge is; a node
# whose daemons were killed (a session or CI job cut short) is found from here and cleaned up by the next one
OWNER_FILE = Path("/run/langflow-platform/node-owner")
CACHE = Path(
    os.environ.get("LFP_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "langflow-platform"
)
# containerd's content store and snapshots persist across cluster-down, so imported images are reused
CONTAINERD_ROOT = CACHE / "containerd"

Progress = Callable[[str], None]


class NodeError(RuntimeError):
    """The real node could not start (the message names the step and the fix) or did not stop cleanly."""


def _run(
    *cmd: str, check: bool = True, timeout: float = 60, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise NodeError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()}")
    return proc


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def _nft_tables() -> list[str]:
    out = _run("nft", "list", "tables", check=False).stdout
    return sorted(line.split(" ", 1)[1].strip() for line in out.splitlines() if line.startswith("table "))


def _nft_chains() -> list[str]:
    """'family table chain' for every chain (iptables-nft keeps KUBE-* canary chains in its own tables)."""
    out = _run("nft", "-j", "list", "chains", check=False).stdout
    with contextlib.suppress(ValueError):
        items = json.loads(out).get("nftables", [])
        return sorted(
            f"{c['chain']['family']} {c['chain']['table']} {c['chain']['name']}" for c in items if "chain" in c
        )
    return []


def _netns() -> list[str]:
    return sorted(p.name for p in Path("/var/run/netns").glob("*")) if Path("/var/run/netns").is_dir() else []


def _port_in_use(port: int, host: str = "0.0.0.0") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def bridge_exists() -> bool:
    """The node's bridge is up: a node runs (or one was left behind)."""
    return _run("ip", "link", "show", BRIDGE, check=False).returncode == 0


def host_snapshot() -> dict[str, Any]:
    """What the node may change on the host, read before it starts (restored or compared after it stops)."""
    return {
        "sysctls": {s: _sysctl_path(s).read_text().strip() for s in SYSCTLS if _sysctl_path(s).exists()},
        "nft_tables": _nft_tables(),
        "nft_chains": _nft_chains(),
        "netns": _netns(),
        "paths": {p: Path(p).exists() for p in HOST_PATHS},
    }


@dataclass
class RealNode(DaemonState):
    """One real node joined to a LocalCluster (whose PKI, kubeconfig and apiserver port it is given)."""

    workdir: Path  # the node's own folder inside the cluster's workdir
    pki: Path
    admin_kubeconfig: Path
    apiserver_port: int
    progress: Progress = print
    processes: dict[str, Process] = field(default_factory=dict)

    executables = {"apiserver-relay": "socat"}  # noqa: RUF012

    # ------------------------------------------------------------------------------------------ paths
    @property
    def socket(self) -> Path:
        return self.workdir / "run" / "containerd.sock"

    @property
    def kubelet_dir(self) -> Path:
        return self.workdir / "kubelet"

    @property
    def volumes_dir(self) -> Path:
        """The local volumes' directories: beside the node's folder, so they live as long as the cluster's data."""
        return self.workdir.parent / "node-volumes"

    def _cluster(self) -> Cluster:
        """The cluster the node joins, as its admin sees it (imported here: cluster.py imports this module)."""
        from .cluster import Cluster

        return Cluster("local", self.admin_kubeconfig)

    def recycle_volumes(self) -> list[str]:
        """Wipe every Released volume of the pool and make it Available again (what a static provisioner does)."""
        cluster = self._cluster()
        pvs = json.loads(cluster.kubectl("get", "pv", "-o", "json").stdout)["items"]
        done = []
        for pv in pvs:
            if pv["spec"].get("storageClassName") != STORAGE_CLASS or pv["status"].get("phase") != "Released":
                continue
            path = Path(pv["spec"]["local"]["path"])
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o755)
            patch = json.dumps([{"op": "remove", "path": "/spec/claimRef"}])
            cluster.kubectl("patch", "pv", pv["metadata"]["name"], "--type=json", "-p", patch, check=False)
            done.append(pv["metadata"]["name"])
        return done

    def ctr(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return _run("ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args, check=check, timeout=timeout)

    # -------------------------------------------------------------------------------------- preflight
    def preflight(self) -> None:
        """Every kernel feature, binary and port the node needs, checked before anything starts."""
        problems: list[str] = []
        if os.geteuid() != 0:
            problems.append("the real node needs root (containerd, network namespaces, nftables, cgroups)")
        for name in ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "nft", "ip", "socat"):
            if not shutil.which(name):
                problems.append(
                    f"`{name}` is not installed: run `make tools` (Debian package list in tools/versions.env)"
                )
        if _cni_bin_dir() is None:
            problems.append("CNI plugins bridge/host-local missing: apt-get install containernetworking-plugins")
        for name in ("kubelet", "kube-proxy", "coredns"):
            try:
                tool(name)
            except FileNotFoundError as exc:
                problems.append(str(exc))
        filesystems = Path("/proc/filesystems").read_text()
        if "overlay" not in filesystems:
            problems.append(
                "the kernel has no overlay filesystem (containerd's overlayfs snapshotter): modprobe overlay"
            )
        if not Path("/sys/fs/cgroup/memory").is_dir() and not Path("/sys/fs/cgroup/cgroup.controllers").exists():
            problems.append("no memory cgroup controller under /sys/fs/cgroup (kubelet needs cgroups)")
        if _run("nft", "list", "tables", check=False).returncode != 0:
            problems.append("nftables does not work here (`nft list tables` failed): the kernel needs nf_tables")
        if bridge_exists():
            problem = reclaim_left_behind(self.progress)
            if problem:
                problems.append(problem)
        for port in (KUBELET_PORT,):
            if _port_in_use(port):
                problems.append(
                    f"port {port} (kubelet) is in use: stop what listens there (`ss -ltnp 'sport = :{port}'`)"
                )
        if problems:
            raise NodeError(
                "real node preflight failed:\n  - "
                + "\n  - ".join(problems)
                + "\n(`make cluster-up NODE=0` starts the cluster with kwok nodes only)"
            )

    # --------------------------------------------------------------------------------------------- up
    def up(self, import_images: Callable[[str, Path], None] | None = None, timeout: float = 120) -> None:
        """Start the node; `import_images(containerd_address, state_dir)` loads the images before kubelet starts."""
        t0 = time.monotonic()
        step = lambda msg: self.progress(f"[+{time.monotonic() - t0:5.1f}s] node: {msg}")  # noqa: E731
        self.preflight()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._save(snapshot=host_snapshot(), pids={}, started=time.time())
        OWNER_FILE.parent.mkdir(parents=True, exist_ok=True)
        OWNER_FILE.write_text(str(self.workdir))
        try:
            step(f"bridge {BRIDGE} {NODE_IP}/24 and nftables table inet {NFT_TABLE} (no route off this machine)")
            self._network()
            step("containerd (runc, overlayfs; registries point at a closed loopback port)")
            self._containerd()
            if import_images is not None:
                step("images: importing into containerd (reused when already imported)")
                import_images(str(self.socket), CONTAINERD_ROOT)
            step(f"API server relay {NODE_IP}:{APISERVER_RELAY_PORT} -> 127.0.0.1:{self.apiserver_port}; CoreDNS")
            self._relay_and_dns()
            step("kube-proxy (nftables mode) and kubelet")
            self._kube_proxy()
            self._kubelet()
            wait_for(lambda: self._check_alive() and self.ready(), timeout, f"node {NODE_NAME} Ready", interval=0.5)
            step(f"node {NODE_NAME} Ready (taint {TAINT_KEY}=true:NoSchedule)")
        except BaseException:
            self.progress(self.diagnostics(COMPONENTS, lines=20))
            self.down(quiet=True)
            raise

    def _network(self) -> None:
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        # this machine reaches Services through the bridge (source = the node address), never through eth0
        _run("ip", "route", "add", SERVICE_RANGE, "dev", BRIDGE, "src", NODE_IP)
        rules = f"""
table inet {NFT_TABLE} {{
  chain forward {{
    type filter hook forward priority -10; policy accept;
    iifname "{BRIDGE}" oifname != "{BRIDGE}" counter drop comment "pods: no route off this machine"
    oifname "{BRIDGE}" iifname != "{BRIDGE}" counter drop comment "nothing from outside reaches a pod"
  }}
  chain input {{
    type filter hook input priority -10; policy accept;
    iifname "{BRIDGE}" ip daddr != {NODE_IP} counter drop comment "pods reach the host on the node address only"
    iifname != {{ "lo", "{BRIDGE}" }} ip daddr {NODE_IP} counter drop comment "node daemons answer on lo/bridge only"
    iifname != {{ "lo", "{BRIDGE}" }} tcp dport {{ {KUBELET_PORT}, {APISERVER_RELAY_PORT}, 53 }} counter drop
    iifname != {{ "lo", "{BRIDGE}" }} udp dport 53 counter drop
  }}
  chain output {{
    type filter hook output priority 10; policy accept;
    ip daddr {{ {SERVICE_RANGE}, {KWOK_POD_RANGE}, {NODE_SUBNET} }} oifname != {{ "lo", "{BRIDGE}" }} counter drop \
      comment "Service and pod addresses never leave through another interface (kwok pods have no host)"
  }}
}}
"""
        (self.workdir / "nftables.nft").write_text(rules)
        _run("nft", "-f", str(self.workdir / "nftables.nft"))
        conf = self.workdir / "cni" / "net.d"
        conf.mkdir(parents=True, exist_ok=True)
        conflist = {
            "cniVersion": "1.0.0",
            "name": CNI_NETWORK,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "isDefaultGateway": False,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": NODE_SUBNET, "gateway": NODE_IP}]],
                        # the Service range only: a pod has no default route, so nothing leaves the machine
                        "routes": [{"dst": SERVICE_RANGE}],
                        "dataDir": str(self.workdir / "cni" / "ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        (conf / "10-lfp.conflist").write_text(json.dumps(conflist, indent=1))

    def _containerd(self) -> None:
        run_dir, certs = self.workdir / "run", self.workdir / "certs.d"
        run_dir.mkdir(parents=True, exist_ok=True)
        CONTAINERD_ROOT.mkdir(parents=True, exist_ok=True)
        for host in (*REGISTRIES, "_default"):
            (certs / host).mkdir(parents=True, exist_ok=True)
            (certs / host / "hosts.toml").write_text(
                'server = "http://127.0.0.1:9"\n[host."http://127.0.0.1:9"]\n  capabilities = ["pull", "resolve"]\n'
            )
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = f"""version = 2
root = "{CONTAINERD_ROOT}"
state = "{self.workdir / "containerd-state"}"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{run_dir / "containerd.sock.ttrpc"}"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{self.workdir / "opt"}"
[{cri}]
  sandbox_image = "{SANDBOX_IMAGE}"
  restrict_oom_score_adj = true
  enable_selinux = false
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{_cni_bin_dir()}"
    conf_dir = "{self.workdir / "cni" / "net.d"}"
  [{cri}.registry]
    config_path = "{certs}"
"""
        (self.workdir / "containerd.toml").write_text(config)
        self._start("containerd", ["containerd", "--config", str(self.workdir / "containerd.toml")])
        wait_for(
            lambda: self._check_alive() and self.ctr("version", check=False, timeout=10).returncode == 0,
            60,
            "containerd to answer on its socket",
        )

    def _relay_and_dns(self) -> None:
        cluster = self._cluster()
        self._start(
            "apiserver-relay",
            ["socat", f"TCP-LISTEN:{APISERVER_RELAY_PORT},bind={NODE_IP},reuseaddr,fork",
             f"TCP:127.0.0.1:{self.apiserver_port}"],
        )  # fmt: skip
        corefile = self.workdir / "Corefile"
        health = free_port()
        ready = free_port()
        corefile.write_text(
            f""".:53 {{
    bind {NODE_IP}
    errors
    health 127.0.0.1:{health}
    ready 127.0.0.1:{ready}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {self.admin_kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
    loadbalance
}}
"""
        )
        self._start("coredns", [tool("coredns"), "-conf", str(corefile)])
        cluster.apply(_service_objects())
        cluster.apply(_volume_pool(self.volumes_dir))
        import requests

        wait_for(
            lambda: self._check_alive() and requests.get(f"http://127.0.0.1:{ready}/ready", timeout=2).ok,
            60,
            "CoreDNS /ready",
        )

    def _kube_proxy(self) -> None:
        cfg = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "nftables",
            "clientConnection": {"kubeconfig": str(self.workdir / "kube-proxy.kubeconfig")},
            "hostnameOverride": NODE_NAME,
            "bindAddress": NODE_IP,
            "healthzBindAddress": f"127.0.0.1:{free_port()}",
            "metricsBindAddress": f"127.0.0.1:{free_port()}",
            "clusterCIDR": NODE_SUBNET,
            "nodePortAddresses": [f"{NODE_IP}/32"],
            "oomScoreAdj": 0,
            # leave the host's conntrack sysctls alone
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        }
        _client_kubeconfig(self.workdir / "kube-proxy.kubeconfig", self.apiserver_port, self.pki, "kube-proxy")
        (self.workdir / "kube-proxy.yaml").write_text(yaml.safe_dump(cfg))
        self._start("kube-proxy", [tool("kube-proxy"), f"--config={self.workdir / 'kube-proxy.yaml'}", "--v=1"])

    def _kubelet(self) -> None:
        resolv = self.workdir / "resolv.conf"
        resolv.write_text("")  # pods get the cluster DNS only, not the host's search domains
        cfg = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP,
            "port": KUBELET_PORT,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": free_port(),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.pki / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(self.pki / "kubelet.crt"),
            "tlsPrivateKeyFile": str(self.pki / "kubelet.key"),
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,
            "failSwapOn": False,
            "oomScoreAdj": 0,  # this VM denies CAP_SYS_RESOURCE: no negative oom_score_adj
            "clusterDNS": [DNS_SERVICE_IP],
            "clusterDomain": "cluster.local",
            "resolvConf": str(resolv),
            # imported images cannot be pulled back: never garbage-collect them, never evict on disk pressure
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "200Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "registerWithTaints": [{"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"}],
            "maxPods": 60,
            "serializeImagePulls": False,
            "containerLogMaxSize": "10Mi",
            "podLogsDir": str(self.workdir / "pod-logs"),  # else /var/log/pods and /var/log/containers
            "enableDebuggingHandlers": True,
        }
        (self.workdir / "kubelet.yaml").write_text(yaml.safe_dump(cfg))
        _client_kubeconfig(self.workdir / "kubelet.kubeconfig", self.apiserver_port, self.pki, "kubelet-client")
        self.kubelet_dir.mkdir(parents=True, exist_ok=True)
        self._start(
            "kubelet",
            [tool("kubelet"), f"--config={self.workdir / 'kubelet.yaml'}",
             f"--kubeconfig={self.workdir / 'kubelet.kubeconfig'}", f"--root-dir={self.kubelet_dir}",
             f"--cert-dir={self.workdir / 'kubelet-pki'}", f"--hostname-override={NODE_NAME}",
             f"--node-ip={NODE_IP}", f"--node-labels={NODE_LABEL}=real,type=real", "--v=1"],
        )  # fmt: skip

    def ready(self) -> bool:
        proc = self._cluster().kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
        if proc.returncode != 0:
            return False
        conds = json.loads(proc.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

    def running(self) -> bool:
        return self._recorded_alive()

    # ------------------------------------------------------------------------------------------- down
    def down(self, *, quiet: bool = False, grace: float = 30, stop_pods: bool = True) -> None:
        """Stop everything the node started and undo what it changed on the host. Safe to call twice.
        `stop_pods=False`: its kubelet is gone already (a killed node), so its pods are not asked to stop."""
        state = self._state()
        if not state:
            return
        pids: dict[str, int] = state.get("pids", {})
        if stop_pods and "kubelet" in pids and self.socket.exists():
            self._stop_pods(grace)
        self._stop_all([n for n in reversed(COMPONENTS) if n != "containerd"])
        self._kill_tasks()  # containerd's last tasks (and their shims) before containerd itself
        self._stop_all(["containerd"])
        self._kill_shims()
        self._kill_pod_processes()
        self._unmount()
        snapshot = state.get("snapshot", {})
        for ns in set(_netns()) - set(snapshot.get("netns", [])):
            if ns.startswith("cni-"):
                _run("ip", "netns", "delete", ns, check=False)
        _run("ip", "link", "delete", BRIDGE, check=False)
        self._restore_firewall(snapshot)
        for name, value in snapshot.get("sysctls", {}).items():
            with contextlib.suppress(OSError):
                if _sysctl_path(name).read_text().strip() != value:
                    _sysctl_path(name).write_text(value)
        self._remove_cgroups()
        self._remove_host_paths(snapshot)
        if not quiet:
            self.progress("node: stopped kubelet, kube-proxy, CoreDNS, relay, containerd; network and host restored")
        shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(OSError):
            if OWNER_FILE.read_text().strip() == str(self.workdir):
                OWNER_FILE.unlink()

    def _stop_pods(self, grace: float) -> None:
        """Let kubelet stop every pod (so CNI tears the network down) before it stops itself."""
        self._cluster().kubectl(
            "delete", "pods", "--all-namespaces", "--field-selector", f"spec.nodeName={NODE_NAME}",
            "--grace-period=5", "--wait=false", check=False, timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            out = self.ctr("tasks", "ls", "-q", check=False, timeout=10).stdout.split()
            if not out:
                return
            time.sleep(1)

    def _kill_tasks(self) -> None:
        if not self.socket.exists():
            return
        for task in self.ctr("tasks", "ls", "-q", check=False, timeout=20).stdout.split():
            self.ctr("tasks", "kill", "-s", "SIGKILL", task, check=False, timeout=20)
        time.sleep(0.5)
        for task in self.ctr("tasks", "ls", "-q", check=False, timeout=20).stdout.split():
            self.ctr("tasks", "delete", "-f", task, check=False, timeout=20)
        for c in self.ctr("containers", "ls", "-q", check=False, timeout=20).stdout.split():
            self.ctr("containers", "delete", c, check=False, timeout=20)

    def _kill_shims(self) -> None:
        for pid in _pids_mentioning(str(self.workdir)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _unmount(self) -> None:
        prefixes = (str(self.workdir), str(CONTAINERD_ROOT))
        for _ in range(3):
            mounts = [m for m in _mountpoints() if m.startswith(prefixes) or _netns_mount(m)]
            if not mounts:
                return
            for m in sorted(mounts, key=len, reverse=True):
                _run("umount", "-l", m, check=False)

    def _restore_firewall(self, snapshot: dict[str, Any]) -> None:
        """Delete the nftables tables and chains that appeared since the snapshot (kube-proxy's tables, our own,
        kubelet's KUBE-* chains in iptables-nft tables), and the rules of older chains that jump to them."""
        for table in set(_nft_tables()) - set(snapshot.get("nft_tables", [])):
            _run("nft", "delete", "table", *table.split(" ", 1), check=False)
        new = set(_nft_chains()) - set(snapshot.get("nft_chains", []))
        if not new:
            return
        targets = {c.split(" ", 2)[2] for c in new}
        ruleset = json.loads(_run("nft", "-j", "list", "ruleset", check=False).stdout or "{}").get("nftables", [])
        for item in ruleset:
            rule = item.get("rule")
            if not rule or f"{rule['family']} {rule['table']} {rule['chain']}" in new:
                continue
            verdicts = json.dumps(rule.get("expr", []))
            if any(f'"jump": {{"target": "{t}"}}' in verdicts or f'"goto": {{"target": "{t}"}}' in verdicts
                   for t in targets):  # fmt: skip
                _run("nft", "delete", "rule", rule["family"], rule["table"], rule["chain"], "handle",
                     str(rule["handle"]), check=False)  # fmt: skip
        for chain in new:
            _run("nft", "flush", "chain", *chain.split(" ", 2), check=False)
        for chain in new:
            _run("nft", "delete", "chain", *chain.split(" ", 2), check=False)

    @staticmethod
    def _kill_pod_processes() -> None:
        """Containers whose shim was killed with containerd (a killed node) keep running in kubelet's pod cgroups."""
        root = Path("/sys/fs/cgroup")
        for procs in [*root.glob("*/kubepods*/**/cgroup.procs"), *root.glob("kubepods*/**/cgroup.procs")]:
            with contextlib.suppress(OSError, ValueError):
                for pid in procs.read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)

    @staticmethod
    def _remove_cgroups() -> None:
        root = Path("/sys/fs/cgroup")
        for tree in sorted(root.glob("*/kubepods*"), reverse=True) + sorted(root.glob("kubepods*")):
            for d in sorted((p for p in tree.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    d.rmdir()
            with contextlib.suppress(OSError):
                tree.rmdir()

    def _remove_host_paths(self, snapshot: dict[str, Any]) -> None:
        """kubelet and libcni write a few files outside their configured folders; remove what we created."""
        existed = snapshot.get("paths", {})
        results = Path("/var/lib/cni/results")
        for f in results.glob(f"{CNI_NETWORK}-*") if results.is_dir() else []:
            f.unlink(missing_ok=True)
        logs = Path("/var/log/containers")
        for link in logs.glob("*.log") if logs.is_dir() else []:
            with contextlib.suppress(OSError):
                if str(link.readlink()).startswith(str(self.workdir)):  # kubelet's links to our pod logs
                    link.unlink()
        for p in HOST_PATHS:
            if not existed.get(p, True):
                shutil.rmtree(p, ignore_errors=True)


# ------------------------------------------------------------------------------------------- helpers
def leftovers(workdir: Path, snapshot: dict[str, Any]) -> list[str]:
    """Whatever a stopped node left on the host, compared with `snapshot` (host_snapshot() before it started)."""
    found: list[str] = []
    # every daemon of the node (and each containerd shim) names the node's folder on its command line; the API
    # server relay names the node address it listens on
    for mark in (str(workdir), f"bind={NODE_IP},"):
        found += [f"process {pid}: {_cmdline(pid)}" for pid in _pids_mentioning(mark)]
    found += [f"mount {m}" for m in _mountpoints() if m.startswith((str(workdir), str(CONTAINERD_ROOT)))]
    found += [f"netns {n}" for n in set(_netns()) - set(snapshot.get("netns", []))]
    links = _run("ip", "-o", "link", "show", check=False).stdout
    found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines()
              if BRIDGE in line or "veth" in line.split(":")[1]]  # fmt: skip
    found += [f"nft table {t}" for t in set(_nft_tables()) - set(snapshot.get("nft_tables", []))]
    found += [f"nft chain {c}" for c in set(_nft_chains()) - set(snapshot.get("nft_chains", []))]
    for name, value in snapshot.get("sysctls", {}).items():
        now = _sysctl_path(name).read_text().strip()
        if now != value:
            found.append(f"sysctl {name}={now} (was {value})")
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob("*/kubepods*")]
    if workdir.exists():
        found.append(f"folder {workdir}")
    return found


def _cni_bin_dir() -> str | None:
    """Where the CNI plugins the node uses (bridge, host-local) are installed."""
    return next((d for d in CNI_BIN_DIRS if Path(d, "bridge").exists() and Path(d, "host-local").exists()), None)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _pids_mentioning(text: str) -> list[int]:
    me = os.getpid()
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and int(p.name) != me
            and text in _cmdline(int(p.name))]  # fmt: skip


def _mountpoints() -> list[str]:
    return [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]


def _netns_mount(path: str) -> bool:
    return path.startswith(("/var/run/netns/cni-", "/run/netns/cni-"))


def _client_kubeconfig(path: Path, port: int, pki: Path, who: str) -> None:
    from .cluster import write_kubeconfig

    write_kubeconfig(path, f"https://127.0.0.1:{port}", pki, name=f"lfp-{who}", cert=who)


def _service_objects() -> list[dict[str, Any]]:
    """The `kubernetes` and `kube-dns` Services' endpoints on the node address (no selector: hand-made slices)."""
    dns_ports = [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
            "spec": {"clusterIP": DNS_SERVICE_IP, "ports": dns_ports},
        },
        _endpoint_slice("kube-dns", "kube-system", dns_ports),
        _endpoint_slice("kubernetes", "default", [{"name": "https", "port": APISERVER_RELAY_PORT, "protocol": "TCP"}]),
    ]


def _endpoint_slice(service: str, namespace: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    """A hand-made EndpointSlice of `service` on the node address (the Service has no selector)."""
    labels = {"kubernetes.io/service-name": service, "endpointslice.kubernetes.io/managed-by": "lfp-harness"}
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{service}-node", "namespace": namespace, "labels": labels},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}}],
        "ports": ports,
    }


def _volume_pool(root: Path) -> list[dict[str, Any]]:
    """The StorageClass and the pool of local PersistentVolumes (one directory each) on the real node."""
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Retain",
        }
    ]
    for i in range(VOLUME_POOL):
        path = root / f"pv-{i:02d}"
        if not path.exists():
            path.mkdir(parents=True)
            path.chmod(0o755)
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"{NODE_NAME}-pv-{i:02d}", "labels": {NODE_LABEL: "real"}},
                "spec": {
                    "capacity": {"storage": VOLUME_SIZE},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": STORAGE_CLASS,
                    "volumeMode": "Filesystem",
                    "local": {"path": str(path)},
                    "nodeAffinity": {
                        "required": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE_NAME]}
                                    ]
                                }
                            ]
                        }
                    },
                },
            }
        )
    return objects


def reclaim_left_behind(progress: Progress = print) -> str | None:
    """The bridge exists: if no daemon of the node that made it runs (they were killed, not stopped), undo what
    that node left on the host, from its own snapshot, and return None; else the problem, naming the fix."""
    owner = Path(OWNER_FILE.read_text().strip()) if OWNER_FILE.exists() else None
    left = RealNode(owner, owner, owner / "kubeconfig", 0, progress=progress) if owner else None
    state = left._state() if left else {}
    pids: dict[str, int] = state.get("pids", {})
    alive = [n for n, pid in pids.items() if pid_alive(pid, RealNode.executables.get(n, n))]
    if alive or _port_in_use(KUBELET_PORT):
        return (
            f"bridge {BRIDGE} exists and a node runs ({', '.join(alive) or f'port {KUBELET_PORT} in use'}; "
            f"folder {owner}): run `make cluster-down` in the checkout that started it"
        )
    if left is None or not state:
        # no record of what the host looked like before it: remove only what is certainly the node's
        workdir = owner or Path(tempfile.mkdtemp(prefix="lfp-left-behind-"))
        left = RealNode(workdir, workdir, workdir / "kubeconfig", 0, progress=progress)
        snapshot = host_snapshot()
        snapshot["nft_tables"] = [t for t in snapshot["nft_tables"] if t not in OWN_NFT_TABLES]
        snapshot["netns"] = [n for n in snapshot["netns"] if not n.startswith("cni-")]
        left._save(snapshot=snapshot, pids={})
    progress(f"node: the node in {owner or 'an unknown folder'} was killed, not stopped; removing what it left")
    left.down(quiet=True, stop_pods=False)
    if bridge_exists():
        return f"bridge {BRIDGE} is still there after cleaning up a killed node: `ip link delete {BRIDGE}`"
    return None


def node_overlay() -> Path:
    """The harness-only values overlay that puts the buildable components on the real node."""
    return ROOT / "tests" / "harness" / "values" / "real-node.yaml"


def prepare_images(names: Sequence[str] | None = None, progress: Progress = print) -> None:
    """Build (or reuse) the images and import them into the node's containerd root with a containerd of its own,
    started and stopped here; a later `RealNode.up()` finds them imported. For runners whose per-test timeout
    must not pay for a cold build (pytest's session start). Does nothing while a node runs (its bridge exists)."""
    if bridge_exists() and reclaim_left_behind(progress):
        progress(f"images: bridge {BRIDGE} exists (a node runs): it imports the images itself")
        return
    with tempfile.TemporaryDirectory(prefix="lfp-images-") as tmp:
        node = RealNode(Path(tmp), Path(tmp), Path(tmp) / "kubeconfig", 0, progress=progress)
        node._save(snapshot=host_snapshot(), pids={}, started=time.time())
        try:
            node._containerd()
            images_importer(names, progress=progress)(str(node.socket), CONTAINERD_ROOT)
        finally:
            node.down(quiet=True)


def images_importer(names: Sequence[str] | None = None, progress: Progress = print) -> Callable[[str, Path], None]:
    """An `import_images` callback for RealNode.up(): build (or reuse) the images, then import them."""

    def run(address: str, state_dir: Path) -> None:
        from images import build as images_build

        built = images_build.build(names, progress=progress)
        images_build.import_into_containerd(built, address, state_dir, progress=progress)

    return run
