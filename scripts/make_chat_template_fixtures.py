#!/usr/bin/env python3
"""Makes tests/fixtures/chat_templates.json: for each chat template form duet knows (Llama 3,
ChatML plain and Qwen2, Mistral, Gemma, Phi-3), the tokenizer_config.json fields and, for a set
of conversations, the prompt that HuggingFace transformers' `apply_chat_template` renders (or
that it refuses the conversation). edge/server/chat_template.cpp is checked against it.

Runs offline: the templates are the reference templates of each form, committed below as
strings (copied from the models' tokenizer_config.json files); the tokenizer each one is attached
to is built here from a word-level vocabulary. Nothing is downloaded.

    python3 scripts/make_chat_template_fixtures.py                   # transformers (GPU machine)
    python3 scripts/make_chat_template_fixtures.py --engine jinja2   # jinja2 alone, same settings

`--engine jinja2` renders with jinja2 set up the way transformers sets it up (sandboxed,
trim_blocks, lstrip_blocks, raise_exception): the fallback where transformers is not installed.
The file records which engine made it.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# ---- the reference templates ---------------------------------------------------------------
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)  # Meta-Llama-3-8B-Instruct
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)  # plain ChatML (e.g. OpenHermes, SmolLM-Instruct)
QWEN2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n"
    "You are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>"
    "assistant\\n' }}{% endif %}"
)  # Qwen2-0.5B-Instruct (its \n are Jinja escapes inside the string literals)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == "
    "'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles "
    "are supported!') }}{% endif %}{% endfor %}"
)  # Mistral-7B-Instruct-v0.1
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)  # gemma-2b-it
PHI3 = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + "
    "'<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)  # Phi-3-mini-4k-instruct

FORMS = [
    # name, form as duet names it, template, bos, eos
    ("llama3", "Llama 3", LLAMA3, "<|begin_of_text|>", "<|eot_id|>"),
    ("chatml", "ChatML", CHATML, None, "<|im_end|>"),
    ("qwen2", "ChatML", QWEN2, None, "<|im_end|>"),
    ("mistral", "Mistral", MISTRAL, "<s>", "</s>"),
    ("gemma", "Gemma", GEMMA, "<bos>", "<eos>"),
    ("phi3", "Phi-3", PHI3, "<s>", "<|endoftext|>"),
]

SYS = {"role": "system", "content": "You are a terse folk-music assistant."}
U1 = {"role": "user", "content": "Name a jig in D."}
A1 = {"role": "assistant", "content": "  The Kesh.  "}
U2 = {"role": "user", "content": "And a reel?\nIn G, please."}
CONVERSATIONS = [
    [U1],
    [SYS, U1],
    [U1, A1, U2],
    [SYS, U1, A1, U2],
    [{"role": "user", "content": "  spaces around, ünïcödé ♪  "}],
    [U1, U2],  # roles not alternating
]


def make_renderer(engine):
    if engine == "transformers":
        from tokenizers import Tokenizer
        from tokenizers.models import WordLevel
        from transformers import PreTrainedTokenizerFast

        def render(template, bos, eos, messages):
            vocab = {"<unk>": 0}
            for t in (bos, eos):
                if t:
                    vocab.setdefault(t, len(vocab))
            tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="<unk>")),
                                          bos_token=bos, eos_token=eos, unk_token="<unk>")
            tok.chat_template = template
            return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

        import transformers
        return render, "transformers " + transformers.__version__
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.globals["raise_exception"] = raise_exception

    def render(template, bos, eos, messages):
        kw = {"bos_token": bos or "", "eos_token": eos or ""}
        return env.from_string(template).render(messages=messages, add_generation_prompt=True, **kw)

    return render, "jinja2 " + jinja2.__version__ + " (transformers' settings; not transformers itself)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", choices=["transformers", "jinja2"], default="transformers")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures",
                                                  "chat_templates.json"))
    args = ap.parse_args()
    render, made_by = make_renderer(args.engine)
    forms = []
    for name, form, template, bos, eos in FORMS:
        cfg = {"chat_template": template, "eos_token": eos}
        if bos:
            cfg["bos_token"] = bos
        cases = []
        for messages in CONVERSATIONS:
            case = {"messages": messages}
            try:
                case["expected"] = render(template, bos, eos, messages)
            except Exception as e:  # the template refuses the conversation
                case["error"] = str(e)
            cases.append(case)
        forms.append({"name": name, "form": form, "tokenizer_config": cfg, "cases": cases})
    out = {"made_by": made_by, "script": "scripts/make_chat_template_fixtures.py", "forms": forms}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {args.out} ({made_by})", file=sys.stderr)


if __name__ == "__main__":
    main()
