"""Remote-code evasions (red team, wave 2): each `configuration_x.py` reaches `exec` through a
builtins lookup the first resolver did not follow; `MARK` is replaced by the marker path."""

_CODE = "open(MARK, 'w').write('pwned')"

_BODY = {
    "builtins_dict_concat": "__builtins__['ex' + 'ec'](PAYLOAD)",
    "vars_of_builtins": "vars(__import__('builtins'))['exec'](PAYLOAD)",
    "function_globals": "(lambda: 0).__globals__['__builtins__']['exec'](PAYLOAD)",
    "sys_modules_dict": "import sys\nsys.modules['builtins'].__dict__['exec'](PAYLOAD)",
    "conditional_alias": "g = getattr(__builtins__, 'exec') if not isinstance(__builtins__, dict) "
                         "else __builtins__['exec']\ng(PAYLOAD)",
}

CASES: dict[str, str] = {
    name: body.replace("PAYLOAD", repr(_CODE)) + "\n\nfrom transformers import PretrainedConfig\n\n\n"
    "class XConfig(PretrainedConfig):\n    model_type = 'x'\n"
    for name, body in _BODY.items()
}

CONFIG = {"model_type": "x", "architectures": ["XModel"],
          "auto_map": {"AutoConfig": "configuration_x.XConfig"}}


def write_repo(folder, name: str, marker: str) -> None:
    """One remote-code repo: config.json + configuration_x.py of case `name`."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(CONFIG))
    (folder / "configuration_x.py").write_text(CASES[name].replace("MARK", repr(marker)))
