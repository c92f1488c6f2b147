"""Post a bundle's objects to a collection with taxii2-client and read the status.

Usage: post_objects.py COLLECTION_URL BUNDLE_FILE [USER PASSWORD]

Prints {"can_write": false} when the collection is read-only (taxii2-client
then refuses to post), {"http_status": N} when the server rejects the
request, else {"status": <final status resource>}.
"""
import json
import sys

from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import Collection
from requests.exceptions import HTTPError


def main():
    url, bundle_file = sys.argv[1], sys.argv[2]
    user = sys.argv[3] if len(sys.argv) > 3 else None
    password = sys.argv[4] if len(sys.argv) > 4 else None
    with open(bundle_file, encoding="utf-8") as handle:
        objects = json.load(handle)["objects"]

    collection = Collection(url, user=user, password=password)
    if not collection.can_write:
        print(json.dumps({"can_write": False}))
        return
    try:
        status = collection.add_objects({"objects": objects}, wait_for_completion=True, poll_interval=0.2, timeout=20)
    except HTTPError as error:
        print(json.dumps({"http_status": error.response.status_code}))
        return
    except TAXIIServiceException as error:
        print(json.dumps({"error": str(error)}))
        return
    print(json.dumps({"status": status._raw}))


if __name__ == "__main__":
    main()
