"""Analysers shared by the format modules: each reads one kind of embedded content statically.

- `picklevm/`: the symbolic pickle VM (every pickle-bearing format calls `analyse_pickle`);
- `marshal_reader`: marshalled code objects read without `marshal.loads`;
- `keras_walker`: the Keras config walker (`.keras`, `.h5`, bare configs, SavedModel metadata);
- `jinja_template`: Jinja2 chat templates on jinja2's parse tree (GGUF, safetensors, HF configs);
- `python/`: Python source on the `ast` tree (remote code, dataset scripts);
- `torchscript`: TorchScript `code/` of torch.jit archives against the operator allowlist.

Analysers sit below the formats: they import the result model, context, budgets and data tables,
never a format module, the dispatcher or the engine. They recurse into embedded artefacts through
`ScanContext.descend`.
"""
