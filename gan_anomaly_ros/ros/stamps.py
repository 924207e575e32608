"""builtin_interfaces/Time as one integer, for pairing and comparing stamps."""


def stamp_ns(stamp) -> int:
    """A Time message (header.stamp) -> nanoseconds."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec
