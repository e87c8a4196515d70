"""Hostile input of any size, for the tests and the benchmark of what it costs to redact and quarantine."""

HOSTILE_TEXT = {  # name -> the unit repeated: long runs of each shape's characters, and many short runs
    "hex run": "a",
    "colons": ":",
    "hex and colons": "a:",
    "dots and digits": "1.",
    "digits": "1",
    "digits and dashes": "12-",
    "short hex runs": "ab ",
    "many addresses": "::1 1.1.1.1 ",
}


def filled(size: int, start: str, unit: str, end: str) -> str:
    """`start`, then `unit` as often as fits, then `end`: `size` characters at most."""
    return start + unit * ((size - len(start) - len(end)) // len(unit)) + end


def many_keys(size: int) -> str:
    return "{" + ", ".join(f'"k{i}": "{i}.1.1"' for i in range(size // 23)) + "}"  # 23: the longest pair


HOSTILE_BODIES = {  # name -> a body of that shape and (about) that size in bytes; every one is quarantined
    "a hex string": lambda size: filled(size, '{"x": "', "a", '"}'),
    "a string of colons": lambda size: filled(size, '{"x": "', ":", '"}'),
    "a string of digits and dots": lambda size: filled(size, '{"x": "', "1.", '"}'),
    "a hex key": lambda size: filled(size, '{"', "a", '": 1}'),
    "a user_id of hex and colons": lambda size: filled(size, '{"user_id": "', "a:", '"}'),
    "a locale of digits and dashes": lambda size: filled(size, '{"locale": "', "12-", '"}'),
    "many small strings": lambda size: filled(size, '{"x": [', '"::1", ', '"a"]}'),
    "many keys": many_keys,
    "many small objects with an ip": lambda size: filled(size, '{"x": [', '{"ip": "1.1.1.1"}, ', "{}]}"),
    "deep nesting": lambda size: filled(size, '{"x": ' + '{"a": ' * 300 + '"', "a", '"' + "}" * 300 + "}"),
}
