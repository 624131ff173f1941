"""A real SLURM cluster on this machine: munge, slurmctld and two slurmd emulating nodes n1, n2.

Everything (key, sockets, config, state, logs) lives under one throw-away directory; every
command gets SLURM_CONF pointing there. Recipe and traps: shared/notes/slurm-on-one-host.md.
Needs root and Debian's slurmctld, slurmd, slurm-client and munge packages.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel", "sinfo", "srun")
NODES = ("n1", "n2")
FINISHED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here, or None."""
    if os.geteuid() != 0:
        return "starting a SLURM cluster needs root (slurmd runs jobs as their user)"
    missing = [name for name in DAEMONS if shutil.which(name) is None and not Path("/usr/sbin", name).exists()]
    if missing:
        return (
            f"SLURM/munge binaries not installed ({', '.join(missing)}); "
            "apt-get install slurmctld slurmd slurm-client munge"
        )
    return None


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SlurmCluster:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.conf = base / "etc" / "slurm.conf"

    # ---- lifecycle --------------------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        b = self.base
        for sub in ("etc", "run/munge", "var/munge", "var/ctld", "var/d", "log"):
            (b / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(b / "run" / "munge", "munge", "munge")
        shutil.chown(b / "var" / "munge", "munge", "munge")
        (b / "run" / "munge").chmod(0o755)
        (b / "var" / "munge").chmod(0o700)
        key = b / "var" / "munge" / "munge.key"
        self._run([_binary("mungekey"), "-c", "-k", str(key)])
        shutil.chown(key, "munge", "munge")
        self._run(
            [
                "runuser",
                "-u",
                "munge",
                "--",
                _binary("munged"),
                f"--socket={b}/run/munge/munge.socket.2",
                f"--key-file={key}",
                f"--pid-file={b}/run/munge/munged.pid",
                f"--log-file={b}/var/munge/munged.log",
                f"--seed-file={b}/var/munge/munged.seed",
            ]
        )
        self.conf.write_text(self._config())
        self._run([_binary("slurmctld"), "-i"])
        for node in NODES:
            self._run([_binary("slurmd"), "-N", node])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self._run(["sinfo", "-h", "-N", "-o", "%N %T"], check=False).stdout.split("\n")
            if sum(line.endswith(" idle") for line in states) == len(NODES):
                return
            time.sleep(0.5)
        raise RuntimeError(f"SLURM nodes not idle after {timeout} s: {states}\n{self.logs()}")

    def stop(self) -> None:
        pids = [self.base / "run" / f"slurmd-{node}.pid" for node in NODES]
        pids += [self.base / "run" / "slurmctld.pid", self.base / "run" / "munge" / "munged.pid"]
        for pid_file in pids:  # nodes first: a slurmd without its controller takes ~10 s to leave
            try:
                pid = int(pid_file.read_text().split()[0])
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError, IndexError):
                continue
            for _ in range(150):
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.1)

    def logs(self) -> str:
        parts = []
        for log in sorted((self.base / "log").glob("*.log")):
            parts.append(f"--- {log.name} ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(parts)

    # ---- jobs -------------------------------------------------------------------------
    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf), **(extra or {})}

    def sbatch(self, options: list[str], script: list[str], env: dict[str, str], cwd: Path) -> str:
        result = subprocess.run(
            ["sbatch", "--parsable", *options, *script],
            capture_output=True,
            text=True,
            env=self.env(env),
            cwd=cwd,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"sbatch failed: {result.stderr}")
        return result.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        """`scontrol show job` as a dict (kept MinJobAge=300 s after the job ends)."""
        out = self._run(["scontrol", "show", "job", job_id, "-o"], check=False).stdout
        return dict(field.split("=", 1) for field in out.split() if "=" in field)

    def wait(self, job_id: str, until: set[str], timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.job(job_id)
            if info.get("JobState") in until:
                return info
            time.sleep(0.3)
        raise TimeoutError(f"job {job_id} not in {sorted(until)} after {timeout} s: {self.job(job_id)}\n{self.logs()}")

    def run(self, *cmd: str) -> subprocess.CompletedProcess:
        return self._run(list(cmd))

    def _run(self, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(cmd, capture_output=True, text=True, env=self.env(), timeout=60)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def _config(self) -> str:
        b = self.base
        nodes = "\n".join(
            f"NodeName={node} NodeHostname=localhost NodeAddr=127.0.0.1 Port={_free_port()} CPUs=1 "
            f"RealMemory=1000 State=UNKNOWN"
            for node in NODES
        )
        return f"""ClusterName=distgan-ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={b}/run/munge/munge.socket.2
SlurmctldPort={_free_port()}
StateSaveLocation={b}/var/ctld
SlurmdSpoolDir={b}/var/d/%n
SlurmctldPidFile={b}/run/slurmctld.pid
SlurmdPidFile={b}/run/slurmd-%n.pid
SlurmctldLogFile={b}/log/slurmctld.log
SlurmdLogFile={b}/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={b}/log/jobcomp.txt
MailProg=/bin/true
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
MinJobAge=300
KillWait=30
{nodes}
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
