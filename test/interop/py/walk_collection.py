"""Walk a TAXII 2.1 server with taxii2-client the way a consumer does.

Usage: walk_collection.py DISCOVERY_URL COLLECTION_ID PER_REQUEST [USER PASSWORD]

Reads discovery, every API root and its collections, then pages through the
objects of COLLECTION_ID with as_pages(), and prints one JSON document:
{"discovery": {...}, "api_roots": [...], "collections": [...],
 "pages": [object count per page], "objects": [{"id", "version"}...]}.
"""
import json
import sys

from taxii2client.v21 import Server, as_pages


def main():
    url, collection_id, per_request = sys.argv[1], sys.argv[2], int(sys.argv[3])
    user = sys.argv[4] if len(sys.argv) > 4 else None
    password = sys.argv[5] if len(sys.argv) > 5 else None

    server = Server(url, user=user, password=password)
    result = {
        "discovery": {
            "title": server.title,
            "default": server.default.url if server.default else None,
            "api_roots": [root.url for root in server.api_roots],
        },
        "api_roots": [],
        "collections": [],
        "pages": [],
        "objects": [],
    }
    target = None
    for root in server.api_roots:
        result["api_roots"].append({"url": root.url, "title": root.title, "versions": root.versions})
        for collection in root.collections:
            result["collections"].append(
                {"id": collection.id, "title": collection.title, "can_read": collection.can_read}
            )
            if collection.id == collection_id:
                target = collection
    if target is None:
        print(json.dumps(result))
        sys.exit(f"collection {collection_id} not found at {url}")

    for envelope in as_pages(target.get_objects, per_request=per_request):
        objects = envelope.get("objects", [])
        result["pages"].append(len(objects))
        for obj in objects:
            result["objects"].append({"id": obj["id"], "version": obj.get("modified", obj.get("created"))})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
