#!/usr/bin/env python3
"""Writes the malformed-input corpus next to this script.

Each file is one input a tenant could write: a valid base document with one
thing broken (an unknown or misspelt field, a wrong type, a missing field,
a bad name, duration or reference, a limit crossed), or an input that
attacks the parser itself (deep nesting, YAML alias bombs, non-UTF-8,
huge strings). `controller/tests/corpus.rs` feeds every file through the
controller's decoder and `render`: none may panic, and every error must
name a field path or a document and line.

The files are committed; run this only to change the corpus:
    python3 controller/tests/corpus/generate.py
It needs PyYAML (Debian: python3-yaml) for the base documents.
"""

import copy
import json
import os
import shutil

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
API = "cicdoperator.ning1875.io/v1"
IMAGE = "127.0.0.1:5000/cicd/bash:5"

TASK = {
    "apiVersion": API,
    "kind": "MyTask",
    "metadata": {"name": "t1"},
    "spec": {
        "params": [{"name": "p", "default": "x"}, {"name": "list", "type": "array", "default": ["a", "b"]}],
        "results": [{"name": "r"}],
        "workspaces": [{"name": "w"}],
        "stepTemplate": {"env": [{"name": "X", "value": "from-template"}]},
        "steps": [
            {
                "name": "s1",
                "image": IMAGE,
                "script": "echo $(params.p) > $(results.r.path)",
                "env": [{"name": "A", "value": "b"}],
                "timeout": "10s",
                "resources": {"limits": {"cpu": "1"}},
                "volumeMounts": [{"name": "v", "mountPath": "/v"}],
            }
        ],
        "sidecars": [{"name": "db", "image": IMAGE, "ports": [{"containerPort": 80}]}],
        "volumes": [{"name": "v", "emptyDir": {}}],
    },
}

RUN = {
    "apiVersion": API,
    "kind": "MyTaskRun",
    "metadata": {"name": "tr1"},
    "spec": {
        "taskRef": "t1",
        "params": [{"name": "p", "value": "hello"}],
        "workspaces": [{"name": "w", "emptyDir": {}}],
        "timeout": "1h",
        "serviceAccountName": "default",
        "podTemplate": {"nodeSelector": {"a": "b"}, "tolerations": [{"key": "k", "operator": "Exists"}]},
    },
}

INLINE_RUN = {
    "apiVersion": API,
    "kind": "MyTaskRun",
    "metadata": {"name": "inline"},
    "spec": {
        "taskSpec": copy.deepcopy(TASK["spec"]),
        "params": [{"name": "p", "value": "hello"}],
        "workspaces": [
            {
                "name": "w",
                "volumeClaimTemplate": {
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
                },
            }
        ],
    },
}

PIPELINE = {
    "apiVersion": API,
    "kind": "MyPipeline",
    "metadata": {"name": "p1"},
    "spec": {
        "params": [{"name": "p", "default": "x"}],
        "workspaces": [{"name": "shared"}],
        "tasks": [
            {
                "name": "a",
                "taskRef": "t1",
                "params": [{"name": "p", "value": "$(params.p)"}],
                "workspaces": [{"name": "w", "workspace": "shared"}],
            },
            {
                "name": "b",
                "taskRef": "t1",
                "runAfter": ["a"],
                "params": [{"name": "p", "value": "$(tasks.a.results.r)"}],
                "workspaces": [{"name": "w", "workspace": "shared"}],
                "when": [{"input": "$(params.p)", "operator": "in", "values": ["x"]}],
            },
        ],
        "results": [{"name": "out", "value": "$(tasks.b.results.r)"}],
    },
}

PIPELINE_RUN = {
    "apiVersion": API,
    "kind": "MyPipelineRun",
    "metadata": {"name": "pr1"},
    "spec": {
        "pipelineRef": "p1",
        "params": [{"name": "p", "value": "x"}],
        "workspaces": [{"name": "shared", "emptyDir": {}}],
        "timeouts": {"pipeline": "1h"},
    },
}

BASES = {"task": [TASK, RUN], "inline": [INLINE_RUN], "pipeline": [TASK, PIPELINE, PIPELINE_RUN]}

files = {}


class PlainDumper(yaml.SafeDumper):
    """Writes repeated values out in full: anchors and aliases are kept for
    the files that test them on purpose."""

    def ignore_aliases(self, data):
        return True


def dump(documents):
    return "---\n".join(
        yaml.dump(d, Dumper=PlainDumper, sort_keys=False, width=1 << 20) for d in documents
    )


def put(name, content):
    assert name not in files, name
    files[name] = content if isinstance(content, bytes) else content.encode()


def walk(value, path):
    for key in path[:-1]:
        value = value[key]
    return value, path[-1]


def variant(base, doc_index, path, op, arg=None):
    documents = copy.deepcopy(BASES[base])
    parent, last = walk(documents[doc_index], path)
    if op == "rename":
        keys = list(parent.keys())
        parent_items = [(arg if k == last else k, parent[k]) for k in keys]
        parent.clear()
        parent.update(parent_items)
    elif op == "set":
        parent[last] = arg
    elif op == "delete":
        del parent[last]
    elif op == "add":
        parent[last][arg[0]] = arg[1]
    return dump(documents)


# 0. the bases themselves, unbroken: these must render (so each other file
#    fails for the one thing broken in it).
for base in BASES:
    put(f"ok-{base}.yaml", dump(BASES[base]))

# 1. misspelt and unknown fields, top to bottom of every kind (and inside
#    embedded Kubernetes types).
MISSPELLINGS = [
    ("task", 0, ["spec", "steps", 0, "timeout"], "timout"),
    ("task", 0, ["spec", "steps", 0, "image"], "imag"),
    ("task", 0, ["spec", "steps", 0, "script"], "scirpt"),
    ("task", 0, ["spec", "steps", 0, "env"], "envs"),
    ("task", 0, ["spec", "steps", 0, "resources"], "resource"),
    ("task", 0, ["spec", "steps", 0, "volumeMounts"], "volumeMount"),
    ("task", 0, ["spec", "steps", 0, "name"], "Name"),
    ("task", 0, ["spec", "steps", 0, "env", 0, "value"], "valu"),
    ("task", 0, ["spec", "steps", 0, "env", 0, "name"], "nme"),
    ("task", 0, ["spec", "steps", 0, "resources", "limits"], "limit"),
    ("task", 0, ["spec", "steps", 0, "volumeMounts", 0, "mountPath"], "mountpath"),
    ("task", 0, ["spec", "steps"], "step"),
    ("task", 0, ["spec", "params"], "parms"),
    ("task", 0, ["spec", "params", 0, "default"], "defualt"),
    ("task", 0, ["spec", "params", 1, "type"], "typ"),
    ("task", 0, ["spec", "results"], "result"),
    ("task", 0, ["spec", "results", 0, "name"], "nam"),
    ("task", 0, ["spec", "workspaces"], "workspace"),
    ("task", 0, ["spec", "workspaces", 0, "name"], "names"),
    ("task", 0, ["spec", "stepTemplate"], "steptemplate"),
    ("task", 0, ["spec", "stepTemplate", "env"], "environment"),
    ("task", 0, ["spec", "sidecars"], "sidecar"),
    ("task", 0, ["spec", "sidecars", 0, "image"], "images"),
    ("task", 0, ["spec", "sidecars", 0, "ports"], "port"),
    ("task", 0, ["spec", "sidecars", 0, "ports", 0, "containerPort"], "containerport"),
    ("task", 0, ["spec", "volumes"], "volume"),
    ("task", 0, ["spec", "volumes", 0, "emptyDir"], "emptydir"),
    ("task", 0, ["spec", "volumes", 0, "name"], "nmae"),
    ("task", 0, ["spec"], "sepc"),
    ("task", 0, ["metadata"], "metdata"),
    ("task", 1, ["spec", "taskRef"], "taskref"),
    ("task", 1, ["spec", "params"], "param"),
    ("task", 1, ["spec", "params", 0, "value"], "val"),
    ("task", 1, ["spec", "workspaces"], "workspace"),
    ("task", 1, ["spec", "workspaces", 0, "emptyDir"], "emtpyDir"),
    ("task", 1, ["spec", "timeout"], "timout"),
    ("task", 1, ["spec", "serviceAccountName"], "serviceAccount"),
    ("task", 1, ["spec", "podTemplate"], "podtemplate"),
    ("task", 1, ["spec", "podTemplate", "nodeSelector"], "nodeselector"),
    ("task", 1, ["spec", "podTemplate", "tolerations"], "toleration"),
    ("task", 1, ["spec", "podTemplate", "tolerations", 0, "operator"], "op"),
    ("inline", 0, ["spec", "taskSpec"], "taskspec"),
    ("inline", 0, ["spec", "taskSpec", "steps", 0, "timeout"], "timout"),
    ("inline", 0, ["spec", "taskSpec", "steps", 0, "env", 0, "value"], "vaule"),
    ("inline", 0, ["spec", "taskSpec", "sidecars", 0, "image"], "imgae"),
    ("inline", 0, ["spec", "workspaces", 0, "volumeClaimTemplate"], "volumeClaimTemplates"),
    ("inline", 0, ["spec", "workspaces", 0, "volumeClaimTemplate", "spec"], "sepc"),
    ("inline", 0, ["spec", "workspaces", 0, "volumeClaimTemplate", "spec", "accessModes"], "accessMode"),
    ("inline", 0, ["spec", "workspaces", 0, "volumeClaimTemplate", "spec", "resources", "requests"], "request"),
    ("pipeline", 1, ["spec", "tasks"], "task"),
    ("pipeline", 1, ["spec", "tasks", 0, "taskRef"], "taskRefs"),
    ("pipeline", 1, ["spec", "tasks", 1, "runAfter"], "runafter"),
    ("pipeline", 1, ["spec", "tasks", 1, "when"], "whenn"),
    ("pipeline", 1, ["spec", "tasks", 1, "when", 0, "operator"], "operater"),
    ("pipeline", 1, ["spec", "tasks", 1, "when", 0, "values"], "value"),
    ("pipeline", 1, ["spec", "tasks", 0, "workspaces", 0, "workspace"], "workspac"),
    ("pipeline", 1, ["spec", "results", 0, "value"], "values"),
    ("pipeline", 1, ["spec", "params", 0, "default"], "deafult"),
    ("pipeline", 2, ["spec", "pipelineRef"], "pipelineref"),
    ("pipeline", 2, ["spec", "timeouts"], "timeout"),
    ("pipeline", 2, ["spec", "timeouts", "pipeline"], "pipline"),
    ("pipeline", 2, ["spec", "workspaces", 0, "emptyDir"], "emptyDirs"),
    ("pipeline", 2, ["spec", "params", 0, "value"], "valeu"),
]
for number, (base, doc, path, wrong) in enumerate(MISSPELLINGS):
    put(f"unknown-{number:03}-{wrong.lower()}.yaml", variant(base, doc, path, "rename", wrong))

UNKNOWN_ADDED = [
    ("task", 0, ["spec", "steps", 0], ("retries", 3)),
    ("task", 0, ["spec", "steps", 0], ("privileged", True)),
    ("task", 0, ["spec"], ("timeout", "1h")),
    ("task", 1, ["spec"], ("pipelineRef", "p1")),
    ("task", 1, ["spec"], ("nodeName", "n1")),
    ("task", 1, ["spec", "podTemplate"], ("hostPID", True)),
    ("task", 1, []  , ("extra", {"a": 1})),
    ("pipeline", 1, ["spec", "tasks", 0], ("image", IMAGE)),
    ("pipeline", 2, ["spec"], ("taskRef", "t1")),
    ("inline", 0, ["spec", "taskSpec", "steps", 0], ("securityContext", {"privileged": True, "runAsUser": 0, "capabilitie": {}})),
]
for number, (base, doc, path, (key, value)) in enumerate(UNKNOWN_ADDED):
    documents = copy.deepcopy(BASES[base])
    target = documents[doc]
    for part in path:
        target = target[part]
    target[key] = value
    put(f"unknown-added-{number:02}-{key.lower()}.yaml", dump(documents))

# 2. type confusion: each field given a value of the wrong shape.
WRONG_VALUES = [42, True, ["a"], {"a": "b"}, None]
TYPED_PATHS = [
    ("task", 0, ["spec", "steps"]),
    ("task", 0, ["spec", "steps", 0]),
    ("task", 0, ["spec", "steps", 0, "name"]),
    ("task", 0, ["spec", "steps", 0, "image"]),
    ("task", 0, ["spec", "steps", 0, "env"]),
    ("task", 0, ["spec", "steps", 0, "env", 0]),
    ("task", 0, ["spec", "params", 1, "type"]),
    ("task", 0, ["spec", "sidecars", 0, "ports", 0, "containerPort"]),
    ("task", 1, ["spec", "taskRef"]),
    ("task", 1, ["spec", "params"]),
    ("task", 1, ["spec", "timeout"]),
    ("task", 1, ["spec", "podTemplate", "nodeSelector"]),
    ("pipeline", 1, ["spec", "tasks", 1, "runAfter"]),
    ("pipeline", 2, ["spec", "timeouts"]),
]
for number, (base, doc, path) in enumerate(TYPED_PATHS):
    for kind, value in enumerate(WRONG_VALUES):
        name = f"type-{number:02}-{'-'.join(str(p) for p in path[1:]).lower()}-{kind}.yaml"
        put(name, variant(base, doc, path, "set", value))

# 3. required fields missing.
REQUIRED = [
    ("task", 0, ["spec", "steps", 0, "name"]),
    ("task", 0, ["spec", "params", 0, "name"]),
    ("task", 0, ["spec", "results", 0, "name"]),
    ("task", 0, ["spec", "workspaces", 0, "name"]),
    ("task", 0, ["spec", "steps", 0, "env", 0, "name"]),
    ("task", 0, ["spec", "sidecars", 0, "name"]),
    ("task", 0, ["spec", "volumes", 0, "name"]),
    ("task", 0, ["metadata", "name"]),
    ("task", 0, ["apiVersion"]),
    ("task", 0, ["kind"]),
    ("task", 1, ["spec", "params", 0, "value"]),
    ("task", 1, ["spec", "params", 0, "name"]),
    ("task", 1, ["spec", "taskRef"]),
    ("task", 1, ["spec", "workspaces", 0, "name"]),
    ("pipeline", 1, ["spec", "tasks", 0, "name"]),
    ("pipeline", 1, ["spec", "tasks", 1, "when", 0, "operator"]),
    ("pipeline", 1, ["spec", "results", 0, "value"]),
    ("pipeline", 2, ["spec", "pipelineRef"]),
    ("pipeline", 1, ["metadata", "name"]),
]
for number, (base, doc, path) in enumerate(REQUIRED):
    put(f"missing-{number:02}-{'-'.join(str(p) for p in path).lower()}.yaml", variant(base, doc, path, "delete"))

# 4. bad names (the API server's rules for metadata.name).
BAD_NAMES = ["Tr1", "tr_1", "-tr", "tr-", "tr 1", "tr/1", "a" * 254, "trü", "TR", ".tr", "tr.", "tr@1", "tr:1", "", " ", "tr\t1", "tr*", "🙂", "tr..1x" * 50, "A-b"]
for number, name in enumerate(BAD_NAMES):
    put(f"name-{number:02}.yaml", variant("task", 1, ["metadata", "name"], "set", name))

# 5. bad durations.
BAD_DURATIONS = ["1x", "-5s", "5", "1h1x", "h", "1.5.5s", "99999999999999999999h", " 1s", "1s ", "s1", "1 h", "1hh", "1e3s", "0x10s", "∞", "1d", "-0s", "1h-1m"]
for number, duration in enumerate(BAD_DURATIONS):
    put(f"duration-run-{number:02}.yaml", variant("task", 1, ["spec", "timeout"], "set", duration))
    put(f"duration-step-{number:02}.yaml", variant("task", 0, ["spec", "steps", 0, "timeout"], "set", duration))
for number, duration in enumerate(BAD_DURATIONS[:8]):
    put(f"duration-pipeline-{number:02}.yaml", variant("pipeline", 2, ["spec", "timeouts", "pipeline"], "set", duration))

# 6. bad references.
BAD_SCRIPTS = [
    "$(params.nope)", "$(params.p.x)", "$(params.list)", "$(params.list[9])", "$(params.list[x])",
    "$(results.nope.path)", "$(results.r.value)", "$(workspaces.nope.path)", "$(workspaces.w)",
    "$(context.nope)", "$(tasks.a.results.r)", "$(nope)", "$(params.)", "$(params.p[0])",
    "$(workspaces.w.nope)", "$(params.list[*])",
]
for number, script in enumerate(BAD_SCRIPTS):
    put(f"ref-script-{number:02}.yaml", variant("task", 0, ["spec", "steps", 0, "script"], "set", script))
    put(f"ref-image-{number:02}.yaml", variant("task", 0, ["spec", "steps", 0, "image"], "set", script))
BAD_PIPELINE_REFS = [
    "$(tasks.nope.results.r)", "$(tasks.a.results.nope)", "$(tasks.b.results.r)", "$(params.nope)",
    "$(tasks.a)", "$(tasks.a.results)", "$(context.nope)", "$(params.p[*])",
]
for number, ref in enumerate(BAD_PIPELINE_REFS):
    put(f"ref-pipeline-{number:02}.yaml", variant("pipeline", 1, ["spec", "tasks", 0, "params", 0, "value"], "set", ref))
put("ref-task-missing.yaml", variant("task", 1, ["spec", "taskRef"], "set", "nope"))
put("ref-pipeline-missing.yaml", variant("pipeline", 2, ["spec", "pipelineRef"], "set", "nope"))
put("ref-run-after-missing.yaml", variant("pipeline", 1, ["spec", "tasks", 1, "runAfter"], "set", ["nope"]))
put("ref-run-after-self.yaml", variant("pipeline", 1, ["spec", "tasks", 0, "runAfter"], "set", ["a"]) if False else variant("pipeline", 1, ["spec", "tasks", 1, "runAfter"], "set", ["b"]))
put("ref-param-undeclared.yaml", variant("task", 1, ["spec", "params", 0, "name"], "set", "nope"))
put("ref-workspace-undeclared-pipeline.yaml", variant("pipeline", 1, ["spec", "tasks", 0, "workspaces", 0, "workspace"], "set", "nope"))
cross = copy.deepcopy(BASES["task"])
cross[0]["metadata"]["namespace"] = "other"
cross[1]["metadata"]["namespace"] = "mine"
put("ref-cross-namespace-task.yaml", dump(cross))
both = copy.deepcopy(BASES["task"])
both[1]["spec"]["taskSpec"] = copy.deepcopy(TASK["spec"])
del both[1]["spec"]["taskRef"]
both[1]["spec"]["taskSpec"]["steps"] = []
put("ref-inline-no-steps.yaml", dump(both))
dup = copy.deepcopy(BASES["task"])
dup[0]["spec"]["steps"].append(copy.deepcopy(dup[0]["spec"]["steps"][0]))
put("ref-duplicate-step.yaml", dump(dup))
cycle = copy.deepcopy(BASES["pipeline"])
cycle[1]["spec"]["tasks"][0]["runAfter"] = ["b"]
put("ref-pipeline-cycle.yaml", dump(cycle))

# 7. wrong apiVersion and kind.
for number, api in enumerate(["v1", "cicdoperator.ning1875.io/v2", "tekton.dev/v1", "", 5, None]):
    put(f"apiversion-{number:02}.yaml", variant("task", 1, ["apiVersion"], "set", api))
for number, kind in enumerate(["TaskRun", "mytaskrun", "Pod", "", 5, ["MyTaskRun"]]):
    put(f"kind-{number:02}.yaml", variant("task", 1, ["kind"], "set", kind))

# 8. limits: counts, array lengths, amplification.
many_steps = copy.deepcopy(BASES["task"])
many_steps[0]["spec"]["steps"] = [dict(many_steps[0]["spec"]["steps"][0], name=f"s{i}") for i in range(65)]
put("limit-steps.yaml", dump(many_steps))
many_sidecars = copy.deepcopy(BASES["task"])
many_sidecars[0]["spec"]["sidecars"] = [{"name": f"c{i}", "image": IMAGE} for i in range(17)]
put("limit-sidecars.yaml", dump(many_sidecars))
many_params = copy.deepcopy(BASES["task"])
many_params[0]["spec"]["params"] += [{"name": f"q{i}", "default": ""} for i in range(300)]
put("limit-params.yaml", dump(many_params))
many_results = copy.deepcopy(BASES["task"])
many_results[0]["spec"]["results"] = [{"name": f"r{i}"} for i in range(65)] + [{"name": "r"}]
put("limit-results.yaml", dump(many_results))
long_array = copy.deepcopy(BASES["task"])
long_array[1]["spec"]["params"].append({"name": "list", "value": [str(i) for i in range(2000)]})
put("limit-array-items.yaml", dump(long_array))
for number, (size, copies) in enumerate([(10_000, 100), (100_000, 10), (1_000, 2_000), (60_000, 20), (4_096, 300)]):
    amp = copy.deepcopy(BASES["task"])
    amp[1]["spec"]["params"][0]["value"] = "x" * size
    amp[0]["spec"]["steps"][0]["script"] = "$(params.p)" * copies
    put(f"amplify-script-{number}.yaml", dump(amp))
for number, (size, copies) in enumerate([(10_000, 60), (100_000, 6)]):
    amp = copy.deepcopy(BASES["task"])
    amp[1]["spec"]["params"][0]["value"] = "x" * size
    amp[0]["spec"]["steps"] = [
        dict(amp[0]["spec"]["steps"][0], name=f"s{i}", script="$(params.p)" * copies) for i in range(40)
    ]
    put(f"amplify-steps-{number}.yaml", dump(amp))
amp_args = copy.deepcopy(BASES["task"])
amp_args[1]["spec"]["params"].append({"name": "list", "value": ["y" * 100] * 1000})
amp_args[0]["spec"]["steps"][0]["args"] = ["$(params.list[*])"] * 50
put("amplify-array-args.yaml", dump(amp_args))
amp_env = copy.deepcopy(BASES["task"])
amp_env[1]["spec"]["params"][0]["value"] = "z" * 50_000
amp_env[0]["spec"]["steps"][0]["env"] = [{"name": f"E{i}", "value": "$(params.p)"} for i in range(100)]
put("amplify-env.yaml", dump(amp_env))

# 9. huge strings (over the per-field limit without any substitution).
huge = copy.deepcopy(BASES["task"])
huge[0]["spec"]["steps"][0]["script"] = "echo " + "h" * 600_000
put("huge-script.yaml", dump(huge))
huge_name = copy.deepcopy(BASES["task"])
huge_name[1]["metadata"]["name"] = "n" * 100_000
put("huge-name.yaml", dump(huge_name))
huge_key = "k" * 70_000
put("huge-key.yaml", dump(BASES["task"]) + f"---\n{huge_key}: 1\n")

# 10. deep nesting, in flow and block style, in a schemaless value and in typed fields.
for depth in [63, 65, 127, 129, 200, 1_000, 100_000]:
    value = "[" * depth + "x" + "]" * depth
    put(
        f"deep-param-flow-{depth}.yaml",
        dump(BASES["task"][:1]) + f"---\napiVersion: {API}\nkind: MyTaskRun\nmetadata: {{name: deep}}\n"
        f"spec:\n  taskRef: t1\n  params:\n  - name: p\n    value: {value}\n",
    )
for depth in [70, 200, 500]:
    lines = "".join("  " * i + "a:\n" for i in range(depth)) + "  " * depth + "b: 1\n"
    put(f"deep-block-map-{depth}.yaml", lines)
for depth in [80, 500]:
    value = "{a: " * depth + "1" + "}" * depth
    put(f"deep-env-{depth}.yaml", variant("task", 0, ["spec", "steps", 0, "env", 0], "set", None).replace("- null", "- " + value, 1))
put("deep-unclosed.yaml", "spec: " + "[" * 50_000)
put("deep-json.json", json.dumps({"apiVersion": API, "kind": "MyTaskRun", "metadata": {"name": "j"}}) [:-1] + ', "spec": ' + "[" * 300 + "]" * 300 + "}")

# 11. YAML bombs: aliases and anchors, merge keys.
laughs = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
previous = "a"
for level in "bcdefghi":
    laughs += f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 9) + "]\n"
    previous = level
put("bomb-billion-laughs.yaml", laughs)
put(
    "bomb-in-param.yaml",
    dump(BASES["task"][:1])
    + "---\n"
    + f"apiVersion: {API}\nkind: MyTaskRun\nmetadata: {{name: bomb}}\nspec:\n  taskRef: t1\n  params:\n"
    + "  - name: p\n    value: &v [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"  - name: q{i}\n    value: *v\n" for i in range(200)),
)
put("bomb-merge-keys.yaml", "base: &b {a: 1, b: 2}\n" + "".join(f"m{i}: {{<<: *b, c: {i}}}\n" for i in range(300)))
put("bomb-undefined-alias.yaml", "apiVersion: *nope\nkind: MyTaskRun\n")
put("bomb-alias-cycle.yaml", "a: &a\n  b: *a\n")
put("bomb-anchor-storm.yaml", "".join(f"k{i}: &a{i} v\n" for i in range(51_000)))
put("bomb-many-documents.yaml", "---\n" * 5_000)
put("bomb-wide-flow.yaml", "spec: [" + ", ".join(["x"] * 260_000) + "]\n")
put("bomb-long-key-chain.yaml", "spec:\n" + "".join(f"  k{i}: v\n" for i in range(20_000)))
put("bomb-tags.yaml", "apiVersion: !!binary aGVsbG8=\nkind: !!python/object:os.system MyTaskRun\n")

# 12. not UTF-8, and other encodings.
base = dump(BASES["task"]).encode()
put("bytes-latin1-script.yaml", base.replace(b"echo", b"\xe9cho"))
put("bytes-lone-continuation.yaml", base.replace(b"name: s1", b"name: s\x80"))
put("bytes-truncated-sequence.yaml", base + b"# \xe2\x82\n")
put("bytes-overlong.yaml", base.replace(b"t1", b"t\xc0\xb1", 1))
put("bytes-utf16.yaml", dump(BASES["task"]).encode("utf-16"))
put("bytes-nul.yaml", base.replace(b"hello", b"hel\x00lo"))
put("bytes-bom-twice.yaml", b"\xef\xbb\xbf\xef\xbb\xbf" + base)
put("bytes-surrogate.yaml", base.replace(b"hello", b"\xed\xa0\x80"))
put("bytes-random.yaml", bytes((i * 37 + 11) % 256 for i in range(4_096)))
put("bytes-empty.yaml", b"")
put("bytes-control.yaml", base.replace(b"hello", b"\x1b[31mred\x07"))

# 13. not our shape at all.
put("shape-scalar.yaml", "just a string\n")
put("shape-list.yaml", "- a\n- b\n")
put("shape-spec-list.yaml", variant("task", 1, ["spec"], "set", ["taskRef", "t1"]))
put("shape-metadata-string.yaml", variant("task", 1, ["metadata"], "set", "tr1"))
put("shape-bad-yaml.yaml", "spec: {a: [}\n")
put("shape-tabs.yaml", "spec:\n\tname: x\n")
put("shape-duplicate-keys.yaml", dump(BASES["task"]) + "---\napiVersion: x\napiVersion: y\n")

# Mutations that turned out to be valid input (an optional field set to
# null, a number where an int-or-string is allowed, a duration with
# surrounding spaces trimmed by YAML, text that is not one of our
# references; since Tekton compatibility, a step or sidecar without a name and an
# unknown $(context.*) inside a script, left to the shell): kept, as inputs
# that must render.
ACCEPTED = """missing-00-spec-steps-0-name ref-script-09 bytes-bom-twice duration-pipeline-07 duration-run-07 duration-run-08 duration-step-07
duration-step-08 missing-04-spec-steps-0-env-0-name ref-image-11 ref-script-11
type-07-sidecars-0-ports-0-containerport-0 type-07-sidecars-0-ports-0-containerport-4 type-10-timeout-4
type-11-podtemplate-nodeselector-3 type-11-podtemplate-nodeselector-4 type-12-tasks-1-runafter-2
type-13-timeouts-4 missing-05-spec-sidecars-0-name""".split()
for name in ACCEPTED:
    files["ok-" + name + ".yaml"] = files.pop(name + ".yaml")

for name in list(files):
    assert len(name) < 120, name

shutil.rmtree(os.path.join(HERE, "inputs"), ignore_errors=True)
os.makedirs(os.path.join(HERE, "inputs"))
for name, content in sorted(files.items()):
    with open(os.path.join(HERE, "inputs", name), "wb") as out:
        out.write(content)
print(f"{len(files)} files written to {os.path.join(HERE, 'inputs')}")
