"""Runs a sweep's jobs as Ray tasks on an existing Ray cluster (rlbench sweep --backend ray).

Reads the jobs from standard input (a JSON list of {"index", "arguments", "log", "environment"}), submits each as a
task needing one CPU, and prints one JSON line per event on standard output: {"connected": cpus} once, then
{"started": index} as each task is submitted (Ray queues what the cluster cannot run yet) and {"index": index,
"status": exit_status, "node": ip} as each ends. Each task runs
the job's command (the rlbench binary, at the same path on every node) with its output appended to the job's log;
run folders are expected on a filesystem every node shares. SIGINT or SIGTERM cancels the tasks: a running task
passes SIGINT on to its rlbench, which saves a checkpoint and exits 130, so a rerun of the sweep resumes it.
"""
import json
import os
import signal
import socket
import subprocess
import sys


def say(event):
    print(json.dumps(event), flush=True)


def main():
    # A program that started this one may have left the stop signals blocked; they must reach the handler below.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    address = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else "auto"
    jobs = json.load(sys.stdin)
    if address != "auto":
        # Ray retries an unreachable head for a minute; a refused or silent port is told at once.
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except (OSError, ValueError) as error:
            print(f"no Ray cluster reachable at {address}: {error}", file=sys.stderr)
            return 2
    try:
        import ray
    except ImportError as error:
        print(f"the ray backend needs Python's ray package on this machine (python3 -m pip install ray): {error}",
              file=sys.stderr)
        return 2
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    except Exception as error:  # ConnectionError, or no cluster found for "auto"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        where = "on this machine (start one with `ray start --head`, or give --address HOST:PORT)" \
            if address == "auto" else f"at {address}"
        print(f"no Ray cluster reachable {where}: {first}", file=sys.stderr)
        return 2
    say({"connected": int(ray.cluster_resources().get("CPU", 0))})

    @ray.remote(num_cpus=1, max_retries=0)
    def run(job):
        environment = dict(os.environ, **job["environment"])
        with open(job["log"], "ab") as log:
            child = subprocess.Popen(job["arguments"], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     env=environment)
            try:
                status = child.wait()
            except KeyboardInterrupt:  # ray.cancel: ask rlbench to save its checkpoint and stop
                child.send_signal(signal.SIGINT)
                status = child.wait()
        node = ray.util.get_node_ip_address()
        return -status + 128 if status < 0 else status, node

    pending = {run.remote(job): job["index"] for job in jobs}
    for index in pending.values():
        say({"started": index})

    def cancel(signum, frame):
        for ref in list(pending):
            ray.cancel(ref, force=False)
    signal.signal(signal.SIGINT, cancel)
    signal.signal(signal.SIGTERM, cancel)

    while pending:
        done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
        for ref in done:
            index = pending.pop(ref)
            try:
                status, node = ray.get(ref)
            except (ray.exceptions.TaskCancelledError, KeyboardInterrupt):
                status, node = 130, None
            except Exception as error:
                print(f"job {index}: {error}", file=sys.stderr)
                status, node = 1, None
            say({"index": index, "status": status, "node": node})
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
