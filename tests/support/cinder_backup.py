#!/usr/bin/env python3
"""Cinder 29's own S3 and Swift backup drivers, run standalone, for interop tests.

    cinder_backup.py backup  STORE-ARGS --file RAW [--volume-id V] [--backup-id B] [--name N]
        Back RAW up with the real driver; print the export record as Cinder's
        `backup-export` gives it: {"backup-record": {"backup_service", "backup_url"}}.
    cinder_backup.py restore STORE-ARGS --record JSON-FILE... --file RAW
        Import the record(s) as Cinder's backup manager does (decode_record,
        driver.import_record, the required-fields and id checks, backup.update)
        and restore the last one into RAW (an existing file, the new volume).
        Several records form a chain: parents are looked up among them.

STORE-ARGS: --driver s3|swift --endpoint http://HOST:PORT --container NAME
            --object-size BYTES [--compression zstd|zlib|...]
            s3:    --access-key K --secret-key S
            swift: --user ACCOUNT:USER --key KEY   (v1 auth at ENDPOINT/auth/1.0)

The driver code path is Cinder's, unmodified: cinder.backup.drivers.s3.S3BackupDriver
/ cinder.backup.drivers.swift.SwiftBackupDriver (and the ChunkedBackupDriver they
share), configured through oslo.config overrides. Faked, because no Cinder service
runs here: the database (volume lookups and the backup row's save/refresh; a
backup's parent is found among the records given), and the usage notifications.
Everything else -- objects.Backup and its encode_record/decode_record, the object
layout, compression, sha256 lists, volume metadata -- is Cinder's own.
"""

import argparse
import json
import os
import sys
import time
import uuid
import warnings

warnings.simplefilter("ignore")

from oslo_config import cfg  # noqa: E402
from oslo_log import log as logging  # noqa: E402
from oslo_utils import timeutils  # noqa: E402

from cinder import context as cinder_context  # noqa: E402
from cinder import exception  # noqa: E402
from cinder import objects  # noqa: E402
from cinder.objects import fields  # noqa: E402

objects.register_all()

from cinder.backup import chunkeddriver  # noqa: E402
from cinder.backup.drivers import s3 as s3_driver  # noqa: E402
from cinder.backup.drivers import swift as swift_driver  # noqa: E402

CONF = cfg.CONF
GIB = 1 << 30
PROJECT = "0123456789abcdef0123456789abcdef"
USER = "cinder-interop"
SERVICES = {
    "s3": ("cinder.backup.drivers.s3.S3BackupDriver", s3_driver.S3BackupDriver),
    "swift": ("cinder.backup.drivers.swift.SwiftBackupDriver", swift_driver.SwiftBackupDriver),
}


# --- what has to be faked -----------------------------------------------------


class FakeVolume(dict):
    """A volume row as cinder.db.volume_get returns it: item access, and iteration
    over (column, value) pairs like the SQLAlchemy model."""

    def __iter__(self):
        return iter(list(self.items()))


class FakeDB:
    """The few cinder.db calls the drivers and BackupMetadataAPI make."""

    def __init__(self):
        self.volumes = {}
        self.metadata = {}

    def add_volume(self, volume_id, size_gib, name):
        now = timeutils.utcnow()
        self.volumes[volume_id] = FakeVolume(
            id=volume_id, size=size_gib, display_name=name, display_description=None,
            status="backing-up", volume_type_id=None, encryption_key_id=None, bootable=False,
            availability_zone="nova", project_id=PROJECT, user_id=USER,
            created_at=now.strftime("%Y-%m-%dT%H:%M:%S.%f"))
        self.metadata[volume_id] = {}

    def volume_get(self, ctx, volume_id):
        try:
            return self.volumes[volume_id]
        except KeyError:
            raise exception.VolumeNotFound(volume_id=volume_id)

    def volume_metadata_get(self, ctx, volume_id):
        return dict(self.metadata.get(volume_id, {}))

    def volume_glance_metadata_get(self, ctx, volume_id):
        raise exception.GlanceMetadataNotFound(id=volume_id)

    def volume_update(self, ctx, volume_id, values):
        self.volume_get(ctx, volume_id).update(values)

    def volume_metadata_update(self, ctx, volume_id, metadata, delete):
        if delete:
            self.metadata[volume_id] = {}
        self.metadata.setdefault(volume_id, {}).update(metadata)

    def volume_glance_metadata_delete_by_volume(self, ctx, volume_id):
        pass

    def volume_glance_metadata_create(self, ctx, volume_id, key, value):
        pass


BACKUPS = {}  # id -> objects.Backup: the "backups table"


def _save(self):
    self.obj_reset_changes()


def _refresh(self):
    pass  # nobody else changes the row: no cancel


@classmethod
def _get_by_id(cls, ctx, backup_id, *args, **kwargs):
    try:
        return BACKUPS[backup_id]
    except KeyError:
        raise exception.BackupNotFound(backup_id=backup_id)


objects.Backup.save = _save
objects.Backup.refresh = _refresh
objects.Backup.get_by_id = _get_by_id
# Notifications need an RPC transport; they carry nothing the data depends on.
chunkeddriver.volume_utils.notify_about_backup_usage = lambda *a, **k: None


# --- configuration ------------------------------------------------------------


def configure(args):
    CONF([], project="cinder", default_config_files=[])
    CONF.set_override("use_stderr", True)  # stdout carries the JSON answer only
    logging.setup(CONF, "cinder")
    CONF.set_override("storage_availability_zone", "nova")
    CONF.set_override("backup_compression_algorithm", args.compression)
    CONF.set_override("connection", "sqlite://", group="database")
    if args.driver == "s3":
        for k, v in (("backup_s3_endpoint_url", args.endpoint),
                     ("backup_s3_store_access_key", args.access_key),
                     ("backup_s3_store_secret_key", args.secret_key),
                     ("backup_s3_store_bucket", args.container),
                     ("backup_s3_object_size", args.object_size),
                     ("backup_s3_verify_ssl", False)):
            CONF.set_override(k, v)
    else:
        for k, v in (("backup_swift_auth", "single_user"),
                     ("backup_swift_auth_version", "1"),
                     ("backup_swift_auth_url", args.endpoint.rstrip("/") + "/auth/1.0"),
                     ("backup_swift_user", args.user),
                     ("backup_swift_key", args.key),
                     ("backup_swift_container", args.container),
                     ("backup_swift_object_size", args.object_size)):
            CONF.set_override(k, v)


def make_driver(args, db):
    ctx = cinder_context.RequestContext(user_id=USER, project_id=PROJECT, is_admin=True)
    service, cls = SERVICES[args.driver]
    driver = cls(ctx)
    driver.check_for_setup_error()
    driver.db = db
    driver.backup_meta_api.db = db
    return ctx, service, driver


# --- backup ---------------------------------------------------------------------


def do_backup(args):
    db = FakeDB()
    ctx, service, driver = make_driver(args, db)
    volume_id = args.volume_id or str(uuid.uuid4())
    length = os.path.getsize(args.file)
    size_gib = max(1, -(-length // GIB))  # a Cinder volume is whole GiB
    db.add_volume(volume_id, size_gib, "interop-source")
    now = timeutils.utcnow()
    # The row as Cinder's API creates it and the manager updates it before the driver runs.
    backup = objects.Backup(
        context=ctx, id=args.backup_id or str(uuid.uuid4()), user_id=USER, project_id=PROJECT,
        volume_id=volume_id, host="cinder-interop@backup", availability_zone="nova",
        container=None, parent_id=None, status=fields.BackupStatus.CREATING, fail_reason=None,
        size=size_gib, display_name=args.name, display_description=None,
        service_metadata=None, service=service, object_count=0, temp_volume_id=None,
        temp_snapshot_id=None, num_dependent_backups=0, snapshot_id=None,
        data_timestamp=now, restore_volume_id=None, metadata={}, encryption_key_id=None,
        created_at=now, updated_at=None, deleted_at=None, deleted=False)
    BACKUPS[backup.id] = backup
    started = time.monotonic()
    with open(args.file, "rb") as f:
        # As BackupManager.continue_backup calls it (backup_metadata defaults to True).
        updates = driver.backup(backup, f)
    seconds = time.monotonic() - started
    backup.status = fields.BackupStatus.AVAILABLE
    backup.size = size_gib
    if updates:
        backup.update(updates)
    backup.updated_at = timeutils.utcnow()
    backup.save()
    # BackupManager.export_record
    driver_info = driver.export_record(backup)
    record = {"backup_service": backup.service,
              "backup_url": backup.encode_record(driver_info=driver_info)}
    # `seconds`: the driver's backup call alone (for the benchmark; no start-up).
    json.dump({"backup-record": record, "seconds": seconds}, sys.stdout)
    sys.stdout.write("\n")


# --- restore ----------------------------------------------------------------------


def import_record(ctx, driver, service, record):
    """BackupManager.import_record (plus the API's row), on one record."""
    # BackupManager._is_our_backup: the driver's name starts with the record's service.
    if record["backup_service"] and not service.startswith(record["backup_service"]):
        sys.exit(f"Import record failed, cannot find backup service to perform the import. "
                 f"Request service {record['backup_service']} (this one is {service}).")
    options = objects.Backup.decode_record(record["backup_url"])
    if "id" not in options or "size" not in options:
        sys.exit("Provided backup record is missing an id or size")
    backup = objects.Backup(
        context=ctx, id=options["id"], user_id=USER, project_id=PROJECT,
        volume_id="00000000-0000-0000-0000-000000000000",
        status=fields.BackupStatus.CREATING, size=options["size"], metadata={},
        host=None, availability_zone=None, container=None, parent_id=None, fail_reason=None,
        display_name=None, display_description=None, service_metadata=None, service=None,
        object_count=0, temp_volume_id=None, temp_snapshot_id=None, num_dependent_backups=0,
        snapshot_id=None, data_timestamp=None, restore_volume_id=None, encryption_key_id=None,
        created_at=timeutils.utcnow(), updated_at=None, deleted_at=None, deleted=False)
    driver_options = options.pop("driver_info", {})
    driver.import_record(backup, driver_options)
    required = {"display_name", "display_description", "container", "size",
                "service_metadata", "object_count", "id"}
    missing = required - set(options)
    if missing:
        sys.exit("Driver successfully decoded imported backup data, but there are "
                 "missing fields (%s)." % ", ".join(sorted(missing)))
    if options["id"] != backup.id:
        sys.exit("id mismatch")
    options["service"] = service
    options["availability_zone"] = CONF.storage_availability_zone
    options["host"] = "cinder-interop@backup"
    for key in ("name", "user_id", "project_id", "deleted_at", "deleted", "fail_reason", "status"):
        options.pop(key, None)
    backup.update(options)
    backup.save()
    backup.status = fields.BackupStatus.AVAILABLE
    backup.save()
    BACKUPS[backup.id] = backup
    return backup


def do_restore(args):
    db = FakeDB()
    ctx, service, driver = make_driver(args, db)
    backup = None
    for path in args.record:
        with open(path) as f:
            record = json.load(f)
        backup = import_record(ctx, driver, service, record.get("backup-record", record))
    # The new volume the restore writes into (the file exists, sized by the caller).
    volume_id = str(uuid.uuid4())
    db.add_volume(volume_id, backup.size, "restore_backup_" + backup.id)
    backup.status = fields.BackupStatus.RESTORING
    backup.restore_volume_id = volume_id
    backup.save()
    started = time.monotonic()
    with open(args.file, "r+b") as f:
        # As BackupManager._run_restore calls it, into a new volume.
        driver.restore(backup, volume_id, f, True)
    seconds = time.monotonic() - started
    backup.status = fields.BackupStatus.AVAILABLE
    backup.save()
    # What the restore read, as reported by the driver's own metadata reader.
    metadata = driver._read_metadata(backup)
    compression = sorted({o["compression"] for entry in metadata["objects"] for o in entry.values()})
    json.dump({"restored": backup.id, "seconds": seconds, "objects": len(metadata["objects"]),
               "compression": compression,
               "volume": dict(db.volumes[volume_id]), "volume_metadata": db.metadata[volume_id]},
              sys.stdout, default=str)
    sys.stdout.write("\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["backup", "restore"])
    p.add_argument("--driver", choices=sorted(SERVICES), required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--container", required=True)
    p.add_argument("--object-size", type=int, required=True)
    p.add_argument("--compression", default="zstd")
    p.add_argument("--access-key")
    p.add_argument("--secret-key")
    p.add_argument("--user")
    p.add_argument("--key")
    p.add_argument("--file", required=True)
    p.add_argument("--volume-id")
    p.add_argument("--backup-id")
    p.add_argument("--name", default="cinder-made")
    p.add_argument("--record", action="append", default=[])
    args = p.parse_args()
    if args.driver == "s3" and not (args.access_key and args.secret_key):
        p.error("s3 needs --access-key and --secret-key")
    if args.driver == "swift" and not (args.user and args.key):
        p.error("swift needs --user and --key")
    if args.command == "restore" and not args.record:
        p.error("restore needs --record")
    configure(args)
    if args.command == "backup":
        do_backup(args)
    else:
        do_restore(args)


if __name__ == "__main__":
    main()
