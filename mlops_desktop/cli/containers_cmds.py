"""`mlops-desktop images ...`: build, smoke-test, push and list the container images of model versions."""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

from mlops_desktop.cli.common import command, open_workspace
from mlops_desktop.cli.output import clean_json, emit_json, fmt_time, table


def register(sub: argparse._SubParsersAction) -> None:
    images = sub.add_parser("images", help="container images of model versions: build, smoke test, push, list")
    ims = images.add_subparsers(dest="images_command", metavar="COMMAND", required=True)
    p = command(ims, "build", cmd_build, "build the image of a model version (the log streams live; Ctrl-C cancels "
                "and leaves no tagged image)")
    p.add_argument("ref", metavar="MODEL@ALIAS|MODEL/VERSION")
    p.add_argument("--base", metavar="IMAGE", help="base image with Python 3 (default: "
                   "mlops-desktop/python-base:bookworm, made by scripts/infra/base-image.sh)")
    p.add_argument("--tag", metavar="REPO:TAG", help="image tag (default: mlops-desktop/MODEL:vVERSION-HASH)")
    _docker_host(p)
    p.add_argument("--no-prediction-log", action="store_true",
                   help="the image's server keeps no prediction log (nothing for monitoring to read)")
    p.add_argument("--fast-path", action="store_true",
                   help="serve the verified ONNX fast path (adds onnxruntime) instead of the model's own flavor")
    p.add_argument("--smoke", action="store_true", help="smoke-test the image right after the build")
    p = command(ims, "smoke", cmd_smoke, "run an image, check its predictions against the in-process model's on "
                "the input example and a lake sample, measure p50/p99; the container is removed after")
    p.add_argument("image", metavar="IMAGE", help="tag, digest or image id of an image built here")
    p.add_argument("--ref", metavar="MODEL/VERSION", help="the version to compare with (default: the image's)")
    p.add_argument("--sample-rows", type=int, default=200, help="rows sampled from the training data (default 200)")
    _docker_host(p)
    p = command(ims, "push", cmd_push, "push an image to a registry and record its digest (credentials: Docker's "
                "config and credential helpers, or the OS keyring under mlops-desktop:REGISTRY)")
    p.add_argument("image", metavar="IMAGE", help="tag, digest or image id of an image built here")
    p.add_argument("--registry", required=True, metavar="HOST[:PORT]", help="e.g. 127.0.0.1:5000")
    _docker_host(p)
    p = command(ims, "list", cmd_list, "list the images built in this workspace")
    p.add_argument("--model", metavar="NAME", help="only this model's images")
    p = command(ims, "show", cmd_show, "one image: tag, digest, size, build time, smoke figures, pushes")
    p.add_argument("image", metavar="IMAGE")


def _docker_host(p: argparse.ArgumentParser) -> None:
    p.add_argument("--docker-host", metavar="URL", help="Docker engine (default: $DOCKER_HOST or the local socket)")


def _run_cancellable(fn: Any, cancel: threading.Event) -> Any:
    """Run fn in a worker; Ctrl-C sets `cancel` and waits for the worker to unwind (nothing is left tagged)."""
    box: dict[str, Any] = {}
    finished = threading.Event()

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the main thread
            box["error"] = exc
        finally:
            finished.set()

    worker = threading.Thread(target=work, name="images-cli", daemon=True)
    worker.start()
    interrupted = False
    while True:  # an Event, not Thread.join: a join interrupted by Ctrl-C can report a live thread as finished
        try:
            if finished.wait(0.2):
                break
        except KeyboardInterrupt:
            if not interrupted:
                interrupted = True
                print("cancelling the build ...", file=sys.stderr, flush=True)
            cancel.set()
    if "error" in box:
        raise box["error"]
    return box["value"]


def cmd_build(args: argparse.Namespace) -> int:
    from mlops_desktop import containers

    out = sys.stderr if args.json else sys.stdout
    cancel = threading.Event()

    def on_log(line: str) -> None:
        print(line, file=out, flush=True)

    with open_workspace(args) as ws:
        record = _run_cancellable(lambda: containers.build_image(
            ws, args.ref, base=args.base, docker_host=args.docker_host, tag=args.tag, on_log=on_log, cancel=cancel,
            prediction_log=not args.no_prediction_log, fast_path=args.fast_path), cancel)
        smoke = None
        if args.smoke:
            smoke = containers.smoke_test(ws, record, docker_host=args.docker_host)
            record = containers.get_image(ws, record.tag)
    if args.json:
        emit_json(clean_json(record.to_dict()))
    else:
        print(f"image {record.tag}  {record.image_id[7:19]}  {record.size_bytes / 1e6:.0f} MB  "
              f"built in {record.build_seconds:.1f} s")
        if smoke is not None:
            _print_smoke(smoke.to_dict())
    return 0 if smoke is None or smoke.passed else 1


def cmd_smoke(args: argparse.Namespace) -> int:
    from mlops_desktop import containers

    with open_workspace(args) as ws:
        result = containers.smoke_test(ws, args.image, args.ref, docker_host=args.docker_host,
                                       sample_rows=args.sample_rows)
    if args.json:
        emit_json(clean_json(result.to_dict()))
    else:
        _print_smoke(result.to_dict())
    return 0 if result.passed else 1


def _print_smoke(s: dict[str, Any]) -> None:
    verdict = "PASSED" if s["passed"] else "FAILED"
    print(f"smoke test {verdict}: {s['image']} against {s['ref']}")
    print(f"  rows compared  {s['rows']} ({s['example_rows']} from the input example, {s['sample_rows']} from "
          f"{s['sample_source'] or '-'}), mismatches {s['mismatches']}")
    if s.get("first_mismatch"):
        print(f"  first mismatch {s['first_mismatch']}")
    if s.get("p50_ms") is not None:
        print(f"  latency        p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms ({s['requests']} single-row "
              "requests)")
    if s.get("startup_seconds") is not None:
        print(f"  start-up       {s['startup_seconds']:.1f} s to /health")
    if s.get("stop_seconds") is not None:
        print(f"  SIGTERM        exited {s['exit_code']} after {s['stop_seconds']:.1f} s")
    if s.get("error"):
        print(f"  error          {s['error']}")
        for line in s.get("log_tail") or []:
            print(f"    | {line}")


def cmd_push(args: argparse.Namespace) -> int:
    from mlops_desktop import containers

    out = sys.stderr if args.json else sys.stdout
    with open_workspace(args) as ws:
        record = containers.push_image(ws, args.image, args.registry, docker_host=args.docker_host,
                                       on_log=lambda line: print(line, file=out, flush=True))
    if args.json:
        emit_json(clean_json(record.to_dict()))
    else:
        print(f"pushed {record.tag} -> {record.digest}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from mlops_desktop import containers

    with open_workspace(args) as ws:
        records = containers.list_images(ws, args.model)
    if args.json:
        emit_json(clean_json([r.to_dict() for r in records]))
        return 0
    if not records:
        print("no images built yet (mlops-desktop images build MODEL@ALIAS)")
        return 0
    rows = []
    for r in records:
        smoke = "-" if r.smoke is None else ("passed" if r.smoke.get("passed") else "FAILED")
        rows.append([r.ref, r.tag, r.image_id[7:19], f"{r.size_bytes / 1e6:.0f} MB", f"{r.build_seconds:.1f} s",
                     smoke, r.digest or "-", fmt_time(r.created_at)])
    table(["model", "tag", "image", "size", "build", "smoke", "pushed digest", "built"], rows)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from mlops_desktop import containers

    with open_workspace(args) as ws:
        r = containers.get_image(ws, args.image)
    if args.json:
        emit_json(clean_json(r.to_dict()))
        return 0
    print(f"image {r.tag} ({r.kind}) of {r.ref}")
    print(f"  id        {r.image_id}")
    print(f"  size      {r.size_bytes / 1e6:.0f} MB, built in {r.build_seconds:.1f} s "
          f"({r.cached_steps}/{r.steps} steps from the cache) on {r.engine}")
    print(f"  base      {r.base}")
    print(f"  packages  {len(r.options.get('packages') or {})} distributions, python {r.options.get('python', '?')}"
          f", prediction log {'on' if r.options.get('prediction_log') else 'off'}")
    for p in r.pushes:
        print(f"  pushed    {p['digest']}  {fmt_time(p['pushed_at'])} by {p['pushed_by']}")
    if r.smoke:
        _print_smoke(r.smoke)
    return 0
