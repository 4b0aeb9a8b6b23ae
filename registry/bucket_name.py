"""AWS's naming rules for general-purpose buckets, checked when the settings load.

A name AWS refuses would otherwise fail only at the first request, far from the setting. Other S3
servers accept these names too, so one rule serves every endpoint and a bucket's data can move
to AWS.
"""

import re

RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def s3_bucket_name(value: str) -> str:
    """``value`` if AWS accepts it as a general-purpose bucket name.

    Raises:
        ValueError: naming the rule it breaks (pydantic reports it under the setting's name).
    """
    if not 3 <= len(value) <= 63:
        raise ValueError(f"must be 3 to 63 characters long, got {len(value)}: {value!r}")
    if not re.fullmatch(r"[a-z0-9.\-]+", value):
        raise ValueError(f"may hold only lowercase letters, digits, '.' and '-', got {value!r}")
    if not (value[0].isalnum() and value[-1].isalnum()):
        raise ValueError(f"must begin and end with a lowercase letter or a digit, got {value!r}")
    if ".." in value:
        raise ValueError(f"must not hold two adjacent periods, got {value!r}")
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", value):
        raise ValueError(f"must not be formatted as an IP address, got {value!r}")
    for prefix in RESERVED_PREFIXES:
        if value.startswith(prefix):
            raise ValueError(f"must not start with {prefix!r} (reserved by AWS), got {value!r}")
    for suffix in RESERVED_SUFFIXES:
        if value.endswith(suffix):
            raise ValueError(f"must not end with {suffix!r} (reserved by AWS), got {value!r}")
    return value
