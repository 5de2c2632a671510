"""Reads the deployment files the way their tools do, for tests/tests/deploy.rs.

    python tools/deploy_check.py compose COMPOSE_FILE
    python tools/deploy_check.py chart CHART_DIR [-f VALUES.yaml ...] [--kube-version 1.30]

`compose`: the file as `docker-compose config` resolves it (validated by docker-compose,
interpolated from the environment), printed as JSON.

`chart`:
1. Merges the chart's values.yaml with each -f file (later wins, maps merged key by key, as
   Helm does) and checks the result against the chart's values.schema.json (JSON Schema, as
   Helm does before rendering).
2. Renders every template with tools/chart-render (Go's text/template with Helm's functions).
3. Parses each rendered document and validates it against the Kubernetes API schema of
   --kube-version (kubernetes-validate, strict: unknown fields are errors). Objects of custom
   resources (the Prometheus Operator's ServiceMonitor) have no schema there and are listed
   as such.

Prints one JSON object: {"documents": [{"source", "object", "schema"}], "notes": TEXT}.
Exits 1 with the reason on the first failure.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent


def merge(base, override):
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base.get(key), value) if key in base else value
        return out
    return override


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def compose(args):
    done = subprocess.run(["docker-compose", "-f", args.file, "config"], capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"docker-compose config refused {args.file}: {done.stderr.strip()}")
    json.dump(yaml.safe_load(done.stdout), sys.stdout)


def chart(args):
    chart_dir = Path(args.chart)

    chart = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    values = yaml.safe_load((chart_dir / "values.yaml").read_text()) or {}
    for extra in args.values:
        values = merge(values, yaml.safe_load(Path(extra).read_text()) or {})
    schema = json.loads((chart_dir / "values.schema.json").read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(values), key=lambda e: list(e.path))
    if errors:
        fail("values do not match values.schema.json:\n" + "\n".join(
            f"  {'.'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors))

    render_input = {
        "Values": values,
        "Chart": {"Name": chart["name"], "Version": chart["version"], "AppVersion": chart.get("appVersion", "")},
        "Release": {"Name": args.release, "Namespace": args.namespace, "Service": "Helm",
                    "IsInstall": True, "IsUpgrade": False, "Revision": 1},
        "Capabilities": {"KubeVersion": {"Version": "v" + args.kube_version}},
    }
    cache = Path(os.environ.get("LUACH_CACHE", Path.home() / ".cache" / "luach")) / "go"
    env = dict(os.environ, GOCACHE=str(cache / "build"), GOPATH=str(cache / "path"), GOFLAGS="-mod=mod",
               GO111MODULE="off", GOTOOLCHAIN="local", CGO_ENABLED="0")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(render_input, f)
        input_path = f.name
    try:
        done = subprocess.run(["go", "run", str(ROOT / "tools" / "chart-render" / "main.go"), str(chart_dir), input_path],
                              capture_output=True, text=True, env=env)
    finally:
        os.unlink(input_path)
    if done.returncode != 0:
        fail(f"rendering failed: {done.stderr.strip()}")
    rendered = json.loads(done.stdout)

    documents = []
    notes = ""
    for source, text in sorted(rendered.items()):
        if source.endswith("NOTES.txt"):
            notes = text
            continue
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as e:
            fail(f"{source} is not YAML: {e}\n{text}")
        for obj in docs:
            if obj is None:
                continue
            try:
                kubernetes_validate.validate(obj, args.kube_version, strict=True)
                checked = "kubernetes"
            except kubernetes_validate.SchemaNotFoundError:
                if "." not in obj.get("apiVersion", "").split("/")[0]:
                    fail(f"{source}: no schema for core object {obj.get('apiVersion')} {obj.get('kind')}")
                checked = "custom resource (no schema)"
            except kubernetes_validate.ValidationError as e:
                fail(f"{source}: {obj.get('kind')} is not valid for Kubernetes {args.kube_version}: "
                     f"{'.'.join(map(str, e.path))}: {e.message}")
            documents.append({"source": source, "object": obj, "schema": checked})
    json.dump({"documents": documents, "notes": notes}, sys.stdout)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(required=True)
    c = sub.add_parser("compose")
    c.add_argument("file")
    c.set_defaults(run=compose)
    h = sub.add_parser("chart")
    h.add_argument("chart")
    h.add_argument("-f", dest="values", action="append", default=[])
    h.add_argument("--kube-version", default="1.30")
    h.add_argument("--release", default="luach")
    h.add_argument("--namespace", default="signage")
    h.set_defaults(run=chart)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
