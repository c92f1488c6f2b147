"""Validate a STIX 2.1 bundle with stix2-validator (the oasis-open validator).

Usage: validate_bundle.py BUNDLE_FILE

Prints {"valid": bool, "errors": [...], "warnings": [...]}; each error or
warning names the object it is about.
"""
import json
import sys

from stix2validator import ValidationOptions, validate_file


def main():
    options = ValidationOptions(version="2.1")
    results = validate_file(sys.argv[1], options)
    errors, warnings = [], []
    for result in results.object_results or []:
        errors.extend(str(error) for error in result.errors)
        warnings.extend(str(warning) for warning in result.warnings)
    if results.fatal:
        errors.append(f"fatal: {results.fatal}")
    print(json.dumps({"valid": results.is_valid, "errors": errors, "warnings": warnings}))


if __name__ == "__main__":
    main()
