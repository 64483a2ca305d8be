"""Loads repos with transformers (trust_remote_code=True, offline) in this subprocess.

Usage: python code_review_proof.py MARKER KIND:DIR...  KIND is `config` (AutoConfig) or `causal`
(AutoModelForCausalLM; `build-causal` first saves a tiny GPT-2 there with the real library).
Prints "RESULT <dir name> <marker written?>" per repo (the payloads may print too).
"""
import os
import sys

marker = sys.argv[1]
for item in sys.argv[2:]:
    kind, folder = item.split(":", 1)
    if os.path.exists(marker):
        os.remove(marker)
    if kind == "build-causal":
        from transformers import GPT2Config, GPT2LMHeadModel

        GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=16, n_positions=16,
                                   bos_token_id=0, eos_token_id=0)).save_pretrained(folder)
        continue
    try:
        if kind == "config":
            from transformers import AutoConfig

            AutoConfig.from_pretrained(folder, trust_remote_code=True)
        else:
            from transformers import AutoModelForCausalLM

            AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)
    except Exception as exc:  # noqa: BLE001 - reported; the test asserts on the marker
        print("error", folder, type(exc).__name__, exc, file=sys.stderr)
    print("RESULT", os.path.basename(folder), os.path.exists(marker), flush=True)
