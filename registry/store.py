"""S3 access behind the registry's ``ObjectStore`` (``registry.object_store``): checksummed puts and
gets, create-only writes, listing; the boto3 implementation used everywhere outside pure-logic unit tests.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import re
from typing import Callable, Iterator
from urllib.parse import urlsplit

from registry.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    ConfigError,
    IntegrityError,
    NotFoundError,
    StoreError,
)
from registry.object_store import MAX_RECORD_BYTES, ObjectInfo, ObjectVersion, too_large
from registry.settings import StoreSettings


def shown_endpoint(endpoint: str | None) -> str:
    """``endpoint`` as it may appear in a message: ``user:password@`` taken out, AWS's own named."""
    if not endpoint:
        return "AWS S3"
    parts = urlsplit(endpoint)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl() if "@" in parts.netloc else endpoint


def _refuse_redirect_from(endpoint: str) -> Callable[..., None]:
    """A botocore ``needs-retry`` handler that turns an HTTP redirect from ``endpoint`` into a StoreError."""

    def refuse(response=None, **_) -> None:
        if response is None or response[0] is None or response[0].status_code not in (301, 302, 303, 307, 308):
            return
        status = response[0].status_code
        headers = response[1].get("ResponseMetadata", {}).get("HTTPHeaders", {})
        if "x-amz-bucket-region" in headers:
            region = headers["x-amz-bucket-region"]
            raise StoreError(
                f"{endpoint} answered with a redirect (HTTP {status}): the bucket is in region "
                f"'{region}'; set region = \"{region}\" and, for AWS, that region's endpoint"
            )
        location = urlsplit(headers.get("location", ""))
        if location.scheme and location.netloc:
            raise StoreError(
                f"{endpoint} answered with a redirect (HTTP {status} to {location.geturl()}): if "
                f'that is the S3 server, set endpoint = "{location.scheme}://{location.netloc}"'
            )
        raise StoreError(
            f"{endpoint} answered with a redirect (HTTP {status}): is the endpoint an S3 server? "
            "(check `endpoint`, its scheme and its port)"
        )

    return refuse


class S3ObjectStore:
    """An ``ObjectStore`` on any S3-compatible endpoint through boto3."""

    def __init__(self, settings: StoreSettings, *, connect_timeout: float = 5.0, read_timeout: float = 20.0):
        """Raises: ConfigError: the region, or the AWS profile or config file botocore reads besides
        the settings (AWS_PROFILE, AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE), is invalid."""
        import boto3
        from botocore.config import Config
        from botocore.exceptions import ConfigParseError, InvalidRegionError, ProfileNotFound

        self.settings = settings
        self.bucket = settings.bucket
        self.shown_endpoint = shown_endpoint(settings.endpoint)  # for messages: never the userinfo
        try:
            self._client = boto3.client(
                "s3",
                endpoint_url=settings.endpoint,
                aws_access_key_id=settings.access_key,
                aws_secret_access_key=settings.secret_key,
                aws_session_token=settings.session_token,
                verify=settings.ca_bundle,
                region_name=settings.region,
                config=Config(
                    s3={"addressing_style": settings.addressing_style},
                    retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                    # Only send/validate checksums when the operation requires them: several on-prem
                    # S3 servers reject the newer default CRC trailers.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                ),
            )
        except ProfileNotFound as err:
            # botocore reads AWS_DEFAULT_PROFILE first, then AWS_PROFILE.
            variable = "AWS_DEFAULT_PROFILE" if os.environ.get("AWS_DEFAULT_PROFILE") else "AWS_PROFILE"
            raise ConfigError(
                f"{variable}: the AWS profile '{err.kwargs['profile']}' is in no AWS config file; "
                f"unset {variable} (Tailor takes its keys from its own settings) or name a profile "
                "that exists"
            ) from None
        except ConfigParseError as err:
            raise ConfigError(
                f"the AWS config file {err.kwargs['path']} cannot be parsed; fix it, or point "
                "AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE at a valid one"
            ) from None
        except InvalidRegionError as err:
            raise ConfigError(f"region: {err.kwargs['region_name']!r} is not a region name such as us-east-1") from None
        if settings.endpoint:
            # botocore takes any redirect for a bucket in another region and, where the answer names
            # no region (a web server, an http→https redirect), asks the endpoint again from inside
            # its own handler until RecursionError. Refused before that handler runs.
            self._client.meta.events.register_first("needs-retry.s3", _refuse_redirect_from(self.shown_endpoint))

    @property
    def client(self):
        """The boto3 client, for callers that need an operation this interface lacks (bucket setup)."""
        return self._client

    def _translate(self, err: Exception, key: str) -> Exception:
        from botocore.exceptions import (
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
            SSLError,
        )

        where = f"s3://{self.bucket}/{key}"
        if isinstance(err, ReadTimeoutError):
            # SeaweedFS on a full disk accepts the request and never answers it: the bare "Read timeout"
            # left people looking at the network.
            waited = self._client.meta.config.read_timeout
            return StoreError(
                f"the object store at {self.shown_endpoint} accepted a request for "
                f"{where} but sent nothing for {waited:g} s, retries included: it is overloaded, or its "
                "disk is full (the embedded store: `tailor store status` shows its free space)"
            )
        if isinstance(err, ConnectTimeoutError):
            return StoreError(
                f"no connection to the object store at {self.shown_endpoint} within the "
                "connect timeout: check `endpoint` and that the host is reachable"
            )
        if isinstance(err, SSLError):
            return StoreError(
                f"cannot verify the TLS certificate of {self.shown_endpoint}: set "
                "ca_bundle to the PEM file of the CA that signed it (TAILOR_CA_BUNDLE)"
            )
        if isinstance(err, ClientError):
            code = err.response.get("Error", {}).get("Code", "")
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status == 412:
                return AlreadyExistsError(f"{where} already exists")
            if code in ("NoSuchKey", "404", "NotFound"):
                return NotFoundError(f"{where} does not exist")
            if code == "NoSuchBucket":
                return NotFoundError(f"bucket '{self.bucket}' does not exist at {self.shown_endpoint}")
            if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"):
                return AccessDeniedError(
                    f"the store refused {where} for role '{self.settings.role}' ({code}): "
                    "check the role's credentials and permissions"
                )
            return StoreError(f"{where}: {code or status}: {err}")
        if isinstance(err, EndpointConnectionError):
            return StoreError(
                f"cannot reach the object store at {self.shown_endpoint}: is it running? (`tailor store start`)"
            )
        if isinstance(err, NoCredentialsError):
            return AccessDeniedError("no credentials for the object store: set TAILOR_ACCESS_KEY/TAILOR_SECRET_KEY")
        return StoreError(f"{where}: {err}")

    def put(self, key: str, data: bytes, *, create_only: bool = False, retain: bool = False) -> None:
        kwargs: dict = {"Bucket": self.bucket, "Key": key, "Body": data}
        if create_only:
            kwargs["IfNoneMatch"] = "*"
        if retain and self.settings.object_lock_mode:
            kwargs["ObjectLockMode"] = self.settings.object_lock_mode
            kwargs["ObjectLockRetainUntilDate"] = dt.datetime.now(dt.timezone.utc) + dt.timedelta(
                days=self.settings.object_lock_days
            )
            # AWS refuses Object Lock headers without a body checksum, and this client computes
            # checksums only where the operation demands one (PutObject does not).
            kwargs["ContentMD5"] = base64.b64encode(hashlib.md5(data).digest()).decode()
        try:
            self._put_object(kwargs)
        except AlreadyExistsError as conflict:
            # botocore retries a put whose reply was lost, and the retry finds what the first attempt
            # wrote. The same bytes are that write: no two writers' bytes agree (claims and events
            # name their actor and time; a version's files sit under their writer's claim).
            try:
                if self.get(key, max_bytes=len(data)) == data:
                    return
            except NotFoundError:
                pass  # a concurrent conditional write (409) that has not landed
            except IntegrityError:
                pass  # larger than this write: another writer's bytes, as racing audit appends have
            raise conflict

    def _put_object(self, kwargs: dict) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = kwargs["Key"]
        try:
            self._client.put_object(**kwargs)
        except ClientError as err:
            if "ObjectLockMode" not in kwargs or not self._lacks_object_lock(err, key):
                raise self._translate(err, key) from err
            # Retention is impossible in this bucket; create-only still holds.
            del kwargs["ObjectLockMode"], kwargs["ObjectLockRetainUntilDate"]
            try:
                self._client.put_object(**kwargs)
            except (ClientError, BotoCoreError) as err2:
                raise self._translate(err2, key) from err2
        except BotoCoreError as err:
            raise self._translate(err, key) from err

    def _lacks_object_lock(self, err, key: str) -> bool:
        """Whether a put with retention was refused because the bucket has no Object Lock, the one
        refusal that lets the object be written without retention.

        Raises:
            StoreError: the refusal is ambiguous and the role may not read the bucket's Object Lock
                configuration to settle it.
        """
        code, message = (err.response.get("Error", {}).get(k, "") for k in ("Code", "Message"))
        if code in ("ObjectLockConfigurationNotFoundError", "InvalidBucketState"):
            return True
        if code != "InvalidRequest":
            return False
        if re.search(r"object ?lock", message, re.IGNORECASE):  # AWS and MinIO say so
            return True
        # SeaweedFS and Ceph RGW answer a bare InvalidRequest, for a bucket without Object Lock and
        # for a retention they refuse alike: the bucket itself tells them apart.
        try:
            return not self.object_lock_enabled()
        except AccessDeniedError:
            raise StoreError(
                f"s3://{self.bucket}/{key}: the store refused the Object Lock retention ({code}: {message}) and "
                f"role '{self.settings.role}' cannot read the bucket's Object Lock configuration (AccessDenied) "
                'to tell whether the bucket has any; if it has none, set object_lock_mode = "NONE"'
            ) from err

    def object_lock_enabled(self) -> bool:
        """Whether the bucket has Object Lock, so that retained writes get their retention.

        Raises:
            AccessDeniedError: the role may not read the bucket's Object Lock configuration.
            StoreError, NotFoundError: the store does not answer, or the bucket does not exist.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            lock = self._client.get_object_lock_configuration(Bucket=self.bucket)["ObjectLockConfiguration"]
        except ClientError as err:
            if err.response.get("Error", {}).get("Code", "") == "ObjectLockConfigurationNotFoundError":
                return False
            raise self._translate(err, "") from err
        except BotoCoreError as err:
            raise self._translate(err, "") from err
        return lock.get("ObjectLockEnabled") == "Enabled"

    def get(self, key: str, *, max_bytes: int = MAX_RECORD_BYTES) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            reply = self._client.get_object(Bucket=self.bucket, Key=key)
            declared = reply.get("ContentLength")  # a proxy that re-encodes the reply may drop it
            if declared is not None and declared > max_bytes:
                reply["Body"].close()
                raise too_large(f"s3://{self.bucket}/{key}", declared, max_bytes)
            data = reply["Body"].read(max_bytes + 1)
            if len(data) > max_bytes:
                reply["Body"].close()
                raise too_large(f"s3://{self.bucket}/{key}", declared or len(data), max_bytes)
            reply["Body"].read()  # at the end of the stream botocore checks it got every byte promised
            return data
        except (ClientError, BotoCoreError) as err:
            raise self._translate(err, key) from err

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
            return True
        except (ClientError, BotoCoreError) as err:
            translated = self._translate(err, key)
            if isinstance(translated, NotFoundError):
                return False
            raise translated from err

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for page in self._pages(prefix):
            for obj in page.get("Contents", []):
                yield ObjectInfo(
                    key=obj["Key"],
                    size=obj["Size"],
                    etag=obj.get("ETag", "").strip('"'),
                    modified=obj.get("LastModified"),
                )

    def folders(self, prefix: str) -> Iterator[str]:
        for page in self._pages(prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                yield common["Prefix"][len(prefix) :].rstrip("/")

    def versions(self, prefix: str) -> Iterator[ObjectVersion]:
        for page in self._pages(prefix, paginator="list_object_versions"):
            for obj in page.get("Versions", []):
                yield ObjectVersion(key=obj["Key"], version_id=obj.get("VersionId") or "null", delete_marker=False)
            for obj in page.get("DeleteMarkers", []):
                yield ObjectVersion(key=obj["Key"], version_id=obj.get("VersionId") or "null", delete_marker=True)

    def _pages(self, prefix: str, paginator: str = "list_objects_v2", **listing) -> Iterator[dict]:
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self._client.get_paginator(paginator)
        try:
            yield from paginator.paginate(Bucket=self.bucket, Prefix=prefix, **listing)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404 and not code.startswith("NoSuch"):
                # An S3 server answers a listing of a missing prefix with an empty page and a missing
                # bucket with NoSuchBucket, never a bare 404: something else answers at the endpoint.
                raise StoreError(
                    f"{self.shown_endpoint} answered a listing of bucket '{self.bucket}' with 404 "
                    "Not Found: is the endpoint an S3 server? (check `endpoint` and its port)"
                ) from err
            raise self._translate(err, prefix) from err
        except BotoCoreError as err:
            raise self._translate(err, prefix) from err

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as err:
            raise self._translate(err, key) from err

    def ensure_bucket(self, *, object_lock: bool = True) -> bool:
        """Create the bucket if it is missing. Returns True when it was created."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.head_bucket(Bucket=self.bucket)
            return False
        except ClientError as err:
            if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404:
                raise self._translate(err, "") from err
        except BotoCoreError as err:
            raise self._translate(err, "") from err
        try:
            # Object Lock implies versioning: an overwritten or deleted audit event stays recoverable.
            self._client.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=object_lock)
        except (ClientError, BotoCoreError) as err:
            raise self._translate(err, "") from err
        return True
