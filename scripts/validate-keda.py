#!/usr/bin/env python3
"""Validates deploy/kubernetes/keda-scaledobject.yaml against KEDA's ScaledObject CRD schema.

Usage: scripts/validate-keda.py KEDA_CRD.yaml [MANIFEST]
where KEDA_CRD.yaml is config/crd/bases/keda.sh_scaledobjects.yaml from github.com/kedacore/keda
(not kept in this repository). Needs PyYAML and jsonschema. Checks the openAPIV3Schema of the
manifest's version, and also refuses fields the schema does not declare (the API server would
prune them silently), then checks that a broken copy is refused, so the check itself can fail.
"""
import copy
import sys

import jsonschema
import yaml


def unknown_fields(node, schema, path):
    """Fields of `node` that `schema` does not declare, as dotted paths."""
    found = []
    if isinstance(node, dict) and "properties" in schema:
        open_ended = schema.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in schema
        for key, value in node.items():
            if key in schema["properties"]:
                found += unknown_fields(value, schema["properties"][key], path + [key])
            elif not open_ended:
                found.append(".".join(map(str, path + [key])))
    elif isinstance(node, list) and "items" in schema:
        for i, item in enumerate(node):
            found += unknown_fields(item, schema["items"], path + [i])
    return found


def main():
    crd_path = sys.argv[1]
    manifest = sys.argv[2] if len(sys.argv) > 2 else "deploy/kubernetes/keda-scaledobject.yaml"
    crd = yaml.safe_load(open(crd_path))
    doc = yaml.safe_load(open(manifest))
    group, version = doc["apiVersion"].split("/")
    assert crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == doc["kind"], "wrong CRD"
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]
    errors += [f"{p}: not in the schema" for p in unknown_fields(doc, schema, [])]
    broken = copy.deepcopy(doc)
    del broken["spec"]["scaleTargetRef"]["name"]
    if not list(validator.iter_errors(broken)):
        errors.append("a copy without scaleTargetRef.name passed: the check is not checking")
    for e in errors:
        print(e)
    print(f"{manifest}: {'INVALID' if errors else 'valid'} against {doc['kind']} {version} ({crd_path})")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
