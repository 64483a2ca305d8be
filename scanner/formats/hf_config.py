"""Hugging Face repository configs: config.json, tokenizer/processor configs, and friends.

These files are plain JSON, but several of them tell a loader to import Python code from the
repository:
- `auto_map` (config.json, tokenizer_config.json, processor/preprocessor/feature-extractor/
  image-processor configs): `{"AutoModel": "modeling_x.MyModel"}`, lists `[slow, fast]` for
  tokenizers, and `"org/repo--modeling_x.MyModel"` for code kept in ANOTHER repository
  (transformers `get_class_from_dynamic_module`: split on "--", then exactly one ".");
- `custom_pipelines` (config.json): `{"task": {"impl": "pipeline_x.MyPipeline"}}`;
- sentence-transformers `modules.json`: module `type`s outside `sentence_transformers.`;
- diffusers `model_index.json`: components whose library is not a known package.

Loaders choose these files by name, so the name is the identification here (text formats may use
it, see interface.py). The code references go to `ctx.artefact.properties["hf_config"]["code_refs"]`
for `repo_checks`, which looks the files up; this module reports MS-HF-001 (remote code needed),
MS-HF-002 (another repository) and MS-HF-005 (malformed reference). `chat_template` strings go to
the chat-template analyser.
"""
from __future__ import annotations

import json
import posixpath
from typing import TYPE_CHECKING, Any

from ..analysis.jinja_template import analyse_template
from ..errors import FormatError
from . import hf_facts
from ..findings import FormatName

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext

NAME = FormatName.HF_CONFIG
MAX_CONFIG = 64 << 20  # tokenizer_config.json with a large added_tokens_decoder is a few MB
AUTO_MAP_FILES = {"config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json",
                  "feature_extractor_config.json", "image_processor_config.json",
                  "video_preprocessor_config.json"}
OTHER_FILES = {"generation_config.json", "chat_template.json", "modules.json", "model_index.json", "router_config.json",
               "adapter_config.json", "special_tokens_map.json", "sentence_bert_config.json",
               "config_sentence_transformers.json", "data_config.json"}
# Facts copied into properties["hf_config"] for the SBOM (absent keys are skipped).
FACT_KEYS = ("architectures", "model_type", "torch_dtype", "dtype", "vocab_size", "hidden_size",
             "num_hidden_layers", "num_attention_heads", "max_position_embeddings", "transformers_version",
             "tokenizer_class", "processor_class", "image_processor_type", "feature_extractor_type",
             "_name_or_path", "base_model_name_or_path", "peft_type", "task_type", "_class_name",
             "_diffusers_version", "library_name", "is_encoder_decoder", "tie_word_embeddings")
# sentence-transformers tries a module type as repository code first and, when no such file exists,
# imports it from the installed package (`import_module_class`): for these names a missing file
# is the library, not missing code.
INSTALLED_FALLBACK = {"transformers", "torch", "peft", "timm", "diffusers", "open_clip", "sentence_transformers"}
# Libraries diffusers imports components from without remote code.
DIFFUSERS_LIBRARIES = {"diffusers", "transformers", "torch", "onnxruntime", "k_diffusion", "flax",
                       "scheduling_utils", "pipeline_utils", None}


def _base(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1].lower()


def sniff(head: bytes, blob: "Blob", name: str) -> bool:
    """A known config file name whose content starts as a JSON document (not a Keras config)."""
    base = _base(name)
    if base not in AUTO_MAP_FILES and base not in OTHER_FILES:
        return False
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] not in (b"{", b"["):
        return False
    if base == "config.json" and b'"class_name"' in head and b'"module"' in head and \
            not any(k in head for k in (b'"auto_map"', b'"model_type"', b'"architectures"')):
        return False  # a Keras model config (inside .keras archives): keras_config takes it
    return True


def analyse(blob: "Blob", ctx: "ScanContext") -> None:
    """Parse the JSON, record facts, report remote-code references and analyse chat templates."""
    doc = _load(blob)
    base = _base(ctx.member or ctx.artefact.path)
    folder = posixpath.dirname((ctx.member or ctx.artefact.path).replace("\\", "/"))
    props: dict[str, Any] = {"file": base}
    refs: list[dict[str, Any]] = []
    if isinstance(doc, dict):
        refs += _object_config(doc, base, props, ctx)
    if isinstance(doc, dict) and isinstance(doc.get("types"), dict) and \
            (base == "router_config.json" or (base == "config.json" and "structure" in doc)):
        refs += _router_refs(doc["types"], folder)
    if base == "modules.json" and isinstance(doc, list):
        refs += _sentence_transformers_refs(doc, ctx)
    props.update(hf_facts.stated(base, doc))  # settings and data manifests, for the ML-BOM
    for ref in refs:
        ref["folder"] = folder
    if refs:
        props["code_refs"] = refs
    ctx.artefact.properties["hf_config"] = props
    _report_refs(refs, base, ctx)


def _load(blob: "Blob") -> Any:
    """The parsed JSON document (FormatError MS-HF-006 when over the cap, not UTF-8 or not JSON)."""
    if blob.size > MAX_CONFIG:
        raise FormatError(f"{blob.size} bytes is over the {MAX_CONFIG}-byte cap for a config file",
                          rule_id="MS-HF-006")
    raw = blob.read_at(0, blob.size)
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 at byte {exc.start}", offset=exc.start, rule_id="MS-HF-006") from None
    except json.JSONDecodeError as exc:
        raise FormatError(f"invalid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})",
                          offset=exc.pos, rule_id="MS-HF-006") from None
    except RecursionError:
        raise FormatError("JSON nested too deeply", rule_id="MS-HF-006") from None


def _object_config(doc: dict[str, Any], base: str, props: dict[str, Any], ctx: "ScanContext"
                   ) -> list[dict[str, Any]]:
    """Facts of a JSON-object config into `props`; returns its code references (chat templates analysed)."""
    refs: list[dict[str, Any]] = []
    for key in FACT_KEYS:
        if key in doc and _small(doc[key]):
            props[key] = doc[key]
    quant = doc.get("quantization_config")
    if isinstance(quant, dict) and isinstance(quant.get("quant_method"), str):
        props["quant_method"] = quant["quant_method"]
    if "auto_map" in doc:
        props["auto_map"] = doc["auto_map"] if _small(doc["auto_map"]) else "(large)"
        refs += _auto_map_refs(doc["auto_map"], base, ctx)
    if isinstance(doc.get("custom_pipelines"), dict):
        refs += _pipeline_refs(doc["custom_pipelines"], base, ctx)
    if base == "model_index.json":
        refs += _diffusers_refs(doc, ctx)
    templates = _chat_templates(doc, ctx)
    if templates:
        props["chat_templates"] = templates
    return refs


def _report_refs(refs: list[dict[str, Any]], base: str, ctx: "ScanContext") -> None:
    """MS-HF-001 for the code a loader imports (trust_remote_code), MS-HF-002 per other-repo reference."""
    needed = [r for r in refs if not r.get("optional")]  # optional: repo_checks reports them if present
    local = [r for r in needed if not r.get("repo")]
    if needed:
        sources = sorted({r["source"] for r in needed})
        ctx.add("MS-HF-001", source=f"{base} {'/'.join(sources)}",
                entries=", ".join(f"{r['key']} -> {r['ref']}" for r in needed[:8])
                + (" ..." if len(needed) > 8 else ""),
                files=", ".join(sorted({r["file"] for r in local})) or "no local file",
                detail="", refs=[{k: r[k] for k in ("key", "ref", "file")} for r in needed[:50]])
    for ref in needed:
        if ref.get("repo"):
            ctx.add("MS-HF-002", source=f"{base} {ref['source']}", key=ref["key"], ref=ref["ref"],
                    file=ref["file"], repo=ref["repo"])


# ---------------------------------------------------------------------------------------------

def parse_reference(ref: str) -> tuple[str | None, str, str] | None:
    """`[repo--]module.Class` -> (repo or None, module file, class), as transformers splits it.

    None when transformers would reject it (not exactly one "." after the repo part).
    """
    repo = None
    if "--" in ref:
        parts = ref.split("--")
        if len(parts) != 2:
            return None
        repo, ref = parts
    pieces = ref.split(".")
    if len(pieces) != 2 or not pieces[0] or not pieces[1]:
        return None
    return repo, pieces[0] + ".py", pieces[1]


def _add_ref(out: list[dict[str, Any]], source: str, key: str, value: Any, ctx: "ScanContext",
             base: str) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        ctx.add("MS-HF-005", source=f"{base} {source}", key=key, ref=str(value)[:200])
        return
    parsed = parse_reference(value)
    if parsed is None:
        ctx.add("MS-HF-005", source=f"{base} {source}", key=key, ref=value[:200])
        return
    repo, file, cls = parsed
    out.append({"source": source, "key": key, "ref": value, "repo": repo, "file": file, "class": cls})


def _auto_map_refs(auto_map: Any, base: str, ctx: "ScanContext") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(auto_map, (list, tuple)):  # legacy tokenizer_config: [slow, fast]
        for value in auto_map[:8]:
            _add_ref(out, "auto_map", "AutoTokenizer", value, ctx, base)
    elif isinstance(auto_map, dict):
        for key, value in list(auto_map.items())[:200]:
            # [slow, fast] tokenizer pairs; {backend: ref} image processors (image_processing_auto
            # `_resolve_auto_map_class_ref` picks one by backend, so every entry can run)
            values = value if isinstance(value, (list, tuple)) else \
                list(value.values()) if isinstance(value, dict) else [value]
            for v in values[:8]:
                _add_ref(out, "auto_map", str(key), v, ctx, base)
    else:
        ctx.add("MS-HF-005", source=f"{base} auto_map", key="auto_map", ref=str(auto_map)[:200])
    return out


def _pipeline_refs(pipelines: dict[str, Any], base: str, ctx: "ScanContext") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for task, spec in list(pipelines.items())[:50]:
        if isinstance(spec, dict) and "impl" in spec:
            _add_ref(out, "custom_pipelines", str(task), spec["impl"], ctx, base)
    return out


def _router_refs(types: dict[str, Any], folder: str) -> list[dict[str, Any]]:
    """sentence-transformers Router (`<sub>/router_config.json`, legacy `config.json` with `types` and
    `structure`): each route's module type outside `sentence_transformers.` is imported with
    `get_class_from_dynamic_module(type, model_name_or_path)`, i.e. from the repository root."""
    out: list[dict[str, Any]] = []
    depth = len([p for p in folder.split("/") if p])
    for route, kind in list(types.items())[:100]:
        if not isinstance(kind, str) or kind.startswith("sentence_transformers."):
            continue
        parsed = parse_reference(kind)
        if parsed is None:
            continue
        repo, file, cls = parsed
        ups = [posixpath.join(*[".."] * n, file) for n in range(1, depth + 1)]
        out.append({"source": "router types", "key": str(route), "ref": kind, "repo": repo, "file": file,
                    "class": cls, "alternatives": ups, "optional": file[:-3] in INSTALLED_FALLBACK})
    return out


def _sentence_transformers_refs(modules: list[Any], ctx: "ScanContext") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in modules[:100]:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            continue
        kind = item["type"]
        if kind.startswith("sentence_transformers."):
            continue
        parsed = parse_reference(kind)
        if parsed is None:  # a dotted import path of an installed package: nothing from the repo
            continue
        repo, file, cls = parsed
        sub = item.get("path") if isinstance(item.get("path"), str) else ""
        out.append({"source": "modules.json", "key": str(item.get("name", item.get("idx", "?"))), "ref": kind,
                    "repo": repo, "file": file, "class": cls,
                    "alternatives": [posixpath.join(sub, file)] if sub else [],
                    "optional": file[:-3] in INSTALLED_FALLBACK})
    return out


def _diffusers_refs(doc: dict[str, Any], ctx: "ScanContext") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cls = doc.get("_class_name")
    if isinstance(cls, list) and len(cls) == 2 and all(isinstance(c, str) for c in cls):
        out.append({"source": "model_index.json", "key": "_class_name", "ref": ".".join(cls), "repo": None,
                    "file": cls[0] + ".py", "class": cls[1]})
    for comp, spec in list(doc.items())[:100]:
        if comp.startswith("_") or not isinstance(spec, list) or len(spec) != 2:
            continue
        lib, name = spec
        if not isinstance(lib, str) or not isinstance(name, str):
            continue
        # diffusers imports <component>/<library>.py whenever that file exists, before it would import
        # the library itself (pipeline_loading_utils.get_class_obj_and_candidates): for a known library
        # the file is only reached if present (`optional`), for any other name it must be there.
        known = lib in DIFFUSERS_LIBRARIES or lib.split(".")[0] in DIFFUSERS_LIBRARIES
        out.append({"source": "model_index.json", "key": comp, "ref": f"{lib}.{name}", "repo": None,
                    "file": posixpath.join(comp, lib + ".py"), "class": name,
                    "alternatives": [] if known else [lib + ".py"], "optional": known})
    return out


def _chat_templates(doc: dict[str, Any], ctx: "ScanContext") -> dict[str, int]:
    """Send `chat_template` (string, or list of {name, template}) to the chat-template analyser.

    Returns {field: template length} for the properties.
    """
    template = doc.get("chat_template")
    if template is None:
        return {}
    items: list[tuple[str, str]] = []
    if isinstance(template, str):
        items.append(("chat_template", template))
    elif isinstance(template, list):
        for i, entry in enumerate(template[:64]):
            if isinstance(entry, dict) and isinstance(entry.get("template"), str):
                items.append((f"chat_template[{entry.get('name', i)}]", entry["template"]))
    lengths = {field: len(src) for field, src in items}
    for field, src in items:
        analyse_template(src, ctx, field=field)
    return lengths


def _small(value: Any) -> bool:
    """JSON-able and small enough to copy into the BOM properties."""
    try:
        return len(json.dumps(value)) <= 4096
    except (TypeError, ValueError):
        return False
