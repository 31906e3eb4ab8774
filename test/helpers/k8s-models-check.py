#!/usr/bin/python3
"""Checks Kubernetes objects against the API models of the official Python client (Debian's
python3-kubernetes), which are generated from the Kubernetes OpenAPI spec.

Reads on stdin a JSON array of objects, or an object mapping a group name (e.g. a values file) to
such an array; prints {"problems": [...], "checked": [...], "unchecked": [...]}, each entry
prefixed with "<group>: " when groups were given.
For every object of a kind the client knows: each field must be one the API defines (no unknown or
misspelt keys), have the API's type (string, integer, boolean, list, map, nested object), and every
field the API marks required must be present (the generated models raise on a missing one).

The client is Kubernetes 1.22's API surface: fields added later are reported as unknown, and
autoscaling/v2 is checked with the identical autoscaling/v2beta2 models. Custom resources (the
prometheus-operator ServiceMonitor) are not known to it and are listed as unchecked.
"""
import json
import re
import sys

import kubernetes.client.models as models
from kubernetes.client.configuration import Configuration

CONFIG = Configuration()
CONFIG.client_side_validation = True

# API group/version → the client's class-name prefix. autoscaling/v2 (GA in 1.23) has the same
# schema as autoscaling/v2beta2, which is the newest this client has.
PREFIX = {"autoscaling/v2": ["V2", "V2beta2"]}


def model_class(api_version, kind):
    version = api_version.split("/")[-1]
    for prefix in PREFIX.get(api_version, [version[0].upper() + version[1:]]):
        cls = getattr(models, prefix + kind, None)
        if cls is not None:
            return cls
    return None


def type_name(value):
    return type(value).__name__


def check(value, openapi_type, path, problems):
    list_match = re.fullmatch(r"list\[(.+)\]", openapi_type)
    dict_match = re.fullmatch(r"dict\(str, (.+)\)", openapi_type)
    if list_match:
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {type_name(value)}")
            return
        for i, item in enumerate(value):
            check(item, list_match.group(1), f"{path}[{i}]", problems)
    elif dict_match:
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map, got {type_name(value)}")
            return
        for key, item in value.items():
            check(item, dict_match.group(1), f"{path}.{key}", problems)
    elif openapi_type == "str":
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string, got {type_name(value)} {value!r}")
    elif openapi_type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected an integer, got {type_name(value)} {value!r}")
    elif openapi_type == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected a number, got {type_name(value)}")
    elif openapi_type == "bool":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected a boolean, got {type_name(value)} {value!r}")
    elif openapi_type in ("object", "datetime", "date"):
        # object: IntOrString and free-form fields; any JSON value is accepted here.
        pass
    else:
        cls = getattr(models, openapi_type, None)
        if cls is None:
            problems.append(f"{path}: the client has no model {openapi_type}")
            return
        check_model(value, cls, path, problems)


def check_model(value, cls, path, problems):
    if not isinstance(value, dict):
        problems.append(f"{path}: expected an object ({cls.__name__}), got {type_name(value)}")
        return
    by_json_name = {json_name: attr for attr, json_name in cls.attribute_map.items()}
    kwargs = {}
    for key, item in value.items():
        attr = by_json_name.get(key)
        if attr is None:
            problems.append(f"{path}.{key}: unknown field for {cls.__name__}")
            continue
        if item is None:
            continue
        check(item, cls.openapi_types[attr], f"{path}.{key}", problems)
        kwargs[attr] = item
    try:
        # The generated setters enforce required fields and enumerations.
        cls(local_vars_configuration=CONFIG, **kwargs)
    except (ValueError, TypeError) as err:
        problems.append(f"{path}: {err}")


def main():
    data = json.load(sys.stdin)
    groups = data.items() if isinstance(data, dict) else [("", data)]
    problems, checked, unchecked = [], [], []
    for group, objects in groups:
        check_objects(objects, f"{group}: " if group else "", problems, checked, unchecked)
    json.dump({"problems": problems, "checked": checked, "unchecked": unchecked}, sys.stdout)


def check_objects(objects, prefix, problems, checked, unchecked):
    for obj in objects:
        label = f"{prefix}{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
        cls = model_class(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if cls is None:
            unchecked.append(label)
            continue
        check_model(obj, cls, label, problems)
        checked.append(f"{label} as {cls.__name__}")


if __name__ == "__main__":
    main()
