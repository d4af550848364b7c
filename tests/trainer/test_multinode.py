"""Two "machines" on one box: two network namespaces joined by a veth pair with addresses of their own, one torchrun
node in each (--nnodes 2, rendezvous at node 0's address). Training must end where a single-node 2-process run does.
Needs root and `ip` (it creates and removes the namespaces); skips elsewhere, saying why."""
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid

import pytest
import torch

from test_distributed import COMMON, REPO, TINY, WORKER, child_env, free_port, metrics, torchrun  # noqa: E402
from test_engine import write_pretrain  # noqa: E402

pytestmark = pytest.mark.slow

ADDR = ("10.231.77.1", "10.231.77.2")


def _can_make_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if not shutil.which("ip"):
        return "needs the `ip` command (iproute2)"
    probe = f"mmprobe{uuid.uuid4().hex[:6]}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode:
        return f"cannot create a network namespace here: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@pytest.fixture
def two_hosts():
    why = _can_make_namespaces()
    if why:
        pytest.skip(why)
    tag = uuid.uuid4().hex[:6]
    ns, veth = [f"mm{tag}n{i}" for i in (0, 1)], [f"mm{tag}v{i}" for i in (0, 1)]

    def ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True)

    try:
        for n in ns:
            ip("netns", "add", n)
        ip("link", "add", veth[0], "type", "veth", "peer", "name", veth[1])
        for n, v, a in zip(ns, veth, ADDR):
            ip("link", "set", v, "netns", n)
            ip("-n", n, "addr", "add", f"{a}/24", "dev", v)
            ip("-n", n, "link", "set", v, "up")
            ip("-n", n, "link", "set", "lo", "up")
        yield list(zip(ns, veth))
    finally:
        for n in ns:  # deleting a namespace removes its end of the veth pair, and so the pair
            subprocess.run(["ip", "netns", "del", n], capture_output=True)
    assert not any(n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout for n in ns)


def test_two_nodes_in_namespaces_match_one_node(tmp_path, tiny_tokenizer_dir, two_hosts):
    data = write_pretrain(tmp_path / "pre.jsonl", 24)
    flags = [*TINY, "--tokenizer_dir", tiny_tokenizer_dir, "--data_path", data, *COMMON, "--learning_rate", 0.5,
             "--grad_clip", 0, "--batch_size", 2, "--accumulation_steps", 2, "--sgd"]
    port = free_port()
    procs = []
    for rank, (n, veth) in enumerate(two_hosts):
        # each node's gloo binds its own end of the pair (its hostname resolves to an address outside the namespace)
        env = {**child_env(), "GLOO_SOCKET_IFNAME": veth}
        out = tmp_path / f"node{rank}"
        cmd = ["ip", "netns", "exec", n, sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
               "--node_rank", str(rank), "--nproc_per_node", "1", "--master_addr", ADDR[0], "--master_port",
               str(port), WORKER, *map(str, flags), "--out_dir", str(out), "--checkpoint_dir", str(out / "ckpt"),
               "--result", str(tmp_path / f"node{rank}.json")]
        procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, start_new_session=True))  # its own group: killed as a whole
    logs = []
    try:
        for p in procs:
            try:
                logs.append(p.communicate(timeout=150)[0])
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)  # torchrun and its workers
                logs.append("timed out\n" + p.communicate()[0])
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    assert all(p.returncode == 0 for p in procs), "\n=====\n".join(log[-3000:] for log in logs)
    res = json.loads((tmp_path / "node0.json").read_text())
    assert res["world_size"] == 2 and res["max_abs_diff"] == [0.0, 0.0], res

    ref = tmp_path / "one_node"
    torchrun(2, *flags, "--out_dir", ref, "--checkpoint_dir", ref / "ckpt", "--result", tmp_path / "ref.json")
    curve, ref_curve = [r["loss"] for r in metrics(tmp_path / "node0")], [r["loss"] for r in metrics(ref)]
    assert len(curve) == 6
    torch.testing.assert_close(torch.tensor(curve), torch.tensor(ref_curve), rtol=1e-6, atol=1e-6)
