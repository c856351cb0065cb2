"""Writes an S3 Inventory of a bucket as AWS delivers one (User Guide, "Amazon S3 Inventory"):
data files under {prefix}/{source}/{config}/data/, and {prefix}/{source}/{config}/{YYYY-MM-DDTHH-MMZ}/
manifest.json with each file's MD5, beside manifest.checksum (the manifest's MD5).

  CSV:     gzipped, no header, every field quoted, keys URL-encoded, fileSchema "Bucket, Key, ...".
  ORC:     struct<bucket:string,key:string,...,size:bigint,last_modified_date:timestamp,...>.
  Parquet: message s3.inventory { ... optional int64 last_modified_date (TIMESTAMP(MILLIS,true)); }.

The listing is taken with ListObjectVersions, so older versions and delete markers appear as rows
with is_latest false / is_delete_marker true, as in a versioned bucket's inventory.

usage: s3_inventory.py ENDPOINT SOURCE DEST_BUCKET PREFIX FORMAT LOCAL_DIR [--files N] [--taken-ms MS]
           [--extra-row KEY,SIZE,IS_LATEST,IS_DELETE_MARKER]... [--source-prefix P] [--unversioned]
           [--local-only] [--blank-lines]
Prints the manifest's key. The same files are also written below LOCAL_DIR (a copy of the bucket).
--source-prefix lists only keys below P (an inventory configured with a prefix filter);
--unversioned lists with ListObjectsV2 (a server without versioning); --local-only writes LOCAL_DIR
only (benches/s3_inventory.py); --blank-lines puts an empty line after every third CSV record
and at the end (a file edited or joined by hand; a blank line holds no record).
"""
import argparse, csv, gzip, hashlib, io, json, os, time, urllib.parse, uuid
from datetime import datetime, timezone

import boto3
import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq

p = argparse.ArgumentParser()
for a in ["endpoint", "source", "dest", "prefix", "format", "local"]:
    p.add_argument(a)
p.add_argument("--files", type=int, default=2)
p.add_argument("--taken-ms", type=int)
p.add_argument("--extra-row", action="append", default=[])
p.add_argument("--source-prefix", default="")
p.add_argument("--unversioned", action="store_true")
p.add_argument("--local-only", action="store_true")
p.add_argument("--blank-lines", action="store_true")
args = p.parse_args()

s3 = boto3.client("s3", endpoint_url=args.endpoint, region_name="us-east-1",
                  aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
                  aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"))
taken_ms = args.taken_ms or int(time.time() * 1000)
rows = []
if args.unversioned:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args.source, Prefix=args.source_prefix):
        for o in page.get("Contents", []):
            rows.append(dict(key=o["Key"], version_id="", is_latest=True, is_delete_marker=False,
                             size=o["Size"], last_modified_date=o["LastModified"],
                             e_tag=o["ETag"].strip('"'), storage_class=o.get("StorageClass", "STANDARD")))
for page in ([] if args.unversioned else
             s3.get_paginator("list_object_versions").paginate(Bucket=args.source, Prefix=args.source_prefix)):
    for v in page.get("Versions", []):
        rows.append(dict(key=v["Key"], version_id=v.get("VersionId") or "", is_latest=v["IsLatest"],
                         is_delete_marker=False, size=v["Size"], last_modified_date=v["LastModified"],
                         e_tag=v["ETag"].strip('"'), storage_class=v.get("StorageClass", "STANDARD")))
    for m in page.get("DeleteMarkers", []):
        rows.append(dict(key=m["Key"], version_id=m.get("VersionId") or "", is_latest=m["IsLatest"],
                         is_delete_marker=True, size=None, last_modified_date=m["LastModified"],
                         e_tag=None, storage_class=None))
for extra in args.extra_row:
    key, size, latest, marker = extra.split(",")
    rows.append(dict(key=key, version_id=uuid.uuid4().hex, is_latest=latest == "true",
                     is_delete_marker=marker == "true", size=int(size),
                     last_modified_date=datetime.now(timezone.utc), e_tag="0" * 32, storage_class="STANDARD"))
# A moto "null" version id is written as AWS writes an unversioned object's: empty.
for r in rows:
    if r["version_id"] == "null":
        r["version_id"] = ""

config = "daily"
base = f"{args.prefix}/{args.source}/{config}"
stamp = datetime.fromtimestamp(taken_ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H-%MZ")
fields = ["bucket", "key", "version_id", "is_latest", "is_delete_marker", "size",
          "last_modified_date", "e_tag", "storage_class"]
csv_names = ["Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker", "Size",
             "LastModifiedDate", "ETag", "StorageClass"]


def table(part):
    return pa.table({
        "bucket": pa.array([args.source] * len(part), pa.string()),
        "key": pa.array([r["key"] for r in part], pa.string()),
        "version_id": pa.array([r["version_id"] or None for r in part], pa.string()),
        "is_latest": pa.array([r["is_latest"] for r in part], pa.bool_()),
        "is_delete_marker": pa.array([r["is_delete_marker"] for r in part], pa.bool_()),
        "size": pa.array([r["size"] for r in part], pa.int64()),
        "last_modified_date": pa.array([r["last_modified_date"] for r in part], pa.timestamp("ms", tz="UTC")),
        "e_tag": pa.array([r["e_tag"] for r in part], pa.string()),
        "storage_class": pa.array([r["storage_class"] for r in part], pa.string()),
    })


def encode(part):
    fmt = args.format.upper()
    if fmt == "CSV":
        text = io.StringIO()
        w = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for n, r in enumerate(part):
            if args.blank_lines and n % 3 == 2:
                text.write("\n")
            when = r["last_modified_date"].astimezone(timezone.utc)
            w.writerow([args.source, urllib.parse.quote_plus(r["key"]), r["version_id"],
                        str(r["is_latest"]).lower(), str(r["is_delete_marker"]).lower(),
                        "" if r["size"] is None else r["size"],
                        when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
                        r["e_tag"] or "", r["storage_class"] or ""])
        if args.blank_lines:
            text.write("\n\n")
        return gzip.compress(text.getvalue().encode()), "csv.gz"
    out = io.BytesIO()
    if fmt == "ORC":
        orc.write_table(table(part), out, compression="zlib")
        return out.getvalue(), "orc"
    pq.write_table(table(part), out, compression="snappy")
    return out.getvalue(), "parquet"


def put(key, body):
    if not args.local_only:
        s3.put_object(Bucket=args.dest, Key=key, Body=body)
    path = os.path.join(args.local, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(body)


files = []
n = max(1, args.files)
for i in range(n):
    body, ext = encode(rows[i::n])
    key = f"{base}/data/{uuid.uuid4()}.{ext}"
    put(key, body)
    files.append({"key": key, "size": len(body), "MD5checksum": hashlib.md5(body).hexdigest()})

schema = {
    "CSV": ", ".join(csv_names),
    "ORC": "struct<bucket:string,key:string,version_id:string,is_latest:boolean,is_delete_marker:boolean,"
           "size:bigint,last_modified_date:timestamp,e_tag:string,storage_class:string>",
    "PARQUET": "message s3.inventory { required binary bucket (STRING); required binary key (STRING); "
               "optional binary version_id (STRING); optional boolean is_latest; optional boolean "
               "is_delete_marker; optional int64 size; optional int64 last_modified_date "
               "(TIMESTAMP(MILLIS,true)); optional binary e_tag (STRING); optional binary storage_class (STRING);}",
}[args.format.upper()]
manifest = {
    "sourceBucket": args.source,
    "destinationBucket": f"arn:aws:s3:::{args.dest}",
    "version": "2016-11-30",
    "creationTimestamp": str(taken_ms),
    "fileFormat": {"CSV": "CSV", "ORC": "ORC", "PARQUET": "Parquet"}[args.format.upper()],
    "fileSchema": schema,
    "files": files,
}
body = json.dumps(manifest, indent=2).encode()
manifest_key = f"{base}/{stamp}/manifest.json"
put(manifest_key, body)
put(f"{base}/{stamp}/manifest.checksum", hashlib.md5(body).hexdigest().encode())
print(manifest_key)
