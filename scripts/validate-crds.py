"""Validates custom resources in rendered manifests against their CustomResourceDefinitions' schemas,
strictly: a field the schema does not name fails (the API server would drop it silently).

  python validate-crds.py CRD_DIR MANIFEST...

Used by scripts/test-k8s for KEDA's ScaledObject and TriggerAuthentication, which kubernetes-validate has
no schema for. Exits 1 naming each resource and field that does not validate.
"""
import glob
import sys

import jsonschema
import yaml


def strict(schema):
    """Closes every object schema that lists its properties and does not ask to keep unknown fields."""
    if isinstance(schema, dict):
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def main():
    crd_dir, manifests = sys.argv[1], sys.argv[2:]
    schemas = {}
    for path in glob.glob(f"{crd_dir}/*.yaml"):
        for crd in yaml.safe_load_all(open(path)):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                schemas[key] = strict(version["schema"]["openAPIV3Schema"])
    groups = {group.split("/")[0] for group, _ in schemas}
    failed = checked = 0
    for path in manifests:
        for doc in yaml.safe_load_all(open(path)):
            if not doc or doc.get("apiVersion", "").split("/")[0] not in groups:
                continue
            name = f"{path}: {doc['kind']} {doc['metadata']['name']}"
            schema = schemas.get((doc["apiVersion"], doc["kind"]))
            if schema is None:
                print(f"{name}: no schema for {doc['apiVersion']}", file=sys.stderr)
                failed += 1
                continue
            errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
            for e in errors:
                print(f"{name}: {'/'.join(map(str, e.path)) or '(root)'}: {e.message}", file=sys.stderr)
            failed += bool(errors)
            checked += 1
    print(f"{checked} custom resources checked against {crd_dir}, {failed} failed")
    sys.exit(1 if failed else 0)


main()
