"""A tiny Qwen2-style causal LM and its tokenizer, built offline and deterministically.

The tokenizer is a byte-level BPE trained with `tokenizers` on the sample workspace's
conversations (so it tokenises support-agent text sensibly), with a ChatML chat template that
renders tool calls and tool results. The model has ~0.2M parameters and runs the whole loop
(snapshot, DPO or GRPO, adapter, manifest) on a laptop CPU in a minute.

Randomly initialised, it never writes a tool call, so agent GRPO on the sample would show
episodes without one. By default the build therefore pre-trains it briefly on sample-like
conversations (another seed of the sample's generator, so not the workspace's own traces),
rendered as agent GRPO renders its prompts: the sample environment's tools in the system turn.
Its tokenizer also gives each tool's call opening one token (`call_phrases`). Afterwards about
4 in 5 of its sampled first turns on sample tasks are a well-formed call of one of those tools
(its arguments are mostly invented: it is still a 0.2M-parameter model); the pre-training takes
about 1.5 minutes on 2 CPU cores. `steps=0` gives the random model the test fixture
`tests/fixtures/tiny-qwen2` was built with; `tests/fixtures/tiny-qwen2-agent` is the default.
"""

from __future__ import annotations

import inspect
import json
import random
from pathlib import Path
from typing import Any

PRETRAIN_STEPS = 300  # the default build's pre-training steps
PRETRAIN_SEED = 11  # the generator's seed for the pre-training conversations (the sample uses 7)
PRETRAIN_CONVERSATIONS = 300
BATCH = 4
LR = 1e-2

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"]

# ChatML as Qwen2.5 writes it: tools as JSON schemas in the system turn, tool calls as
# <tool_call>{"name", "arguments": object}</tool_call>, a tool result as its own turn; a message
# renders the same whether or not more follow (the prompt is a prefix of prompt + completion).
CHAT_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n"
    "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}\n\n{% endif %}"
    "# Tools\n<tools>\n{% for t in tools %}{{ t | tojson }}\n{% endfor %}</tools>"
    "<|im_end|>\n"
    "{% elif messages and messages[0]['role'] == 'system' %}"
    "<|im_start|>system\n{{ messages[0]['content'] }}<|im_end|>\n"
    "{% endif %}"
    "{% for message in messages %}"
    "{% if not (loop.first and message['role'] == 'system') %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] %}{{ message['content'] }}{% endif %}"
    "{% for tc in message.get('tool_calls') or [] %}"
    '<tool_call>{"name": "{{ tc[\'function\'][\'name\'] }}", "arguments": '
    "{% if tc['function']['arguments'] is string %}{{ tc['function']['arguments'] }}"
    "{% else %}{{ tc['function']['arguments'] | tojson }}{% endif %}}</tool_call>"
    "{% endfor %}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def corpus() -> list[str]:
    """The texts of sample-like conversations: what the tokenizer's merges are learnt from."""
    from app.sample_scenarios import generate

    texts = []
    for sc in generate(300, seed=11):
        for m in sc.record["messages"]:
            if m.get("content"):
                texts.append(m["content"])
            for tc in m.get("tool_calls") or []:
                texts.append(json.dumps(tc["function"]))
        texts.append(sc.better_answer)
    return texts


def sample_tools() -> list[Any]:
    """The sample environment's tools as TRL hands them to the chat template: the public
    methods of one instance, in `inspect.getmembers` order (GRPOTrainer's own listing)."""
    from app.sample_environment import Environment

    env = Environment()
    return [
        getattr(env, name)
        for name, _ in inspect.getmembers(Environment, predicate=inspect.isfunction)
        if name not in ("reset", "get_reward") and not name.startswith("_")
    ]


def conversations() -> list[list[dict[str, Any]]]:
    """The pre-training conversations: another seed of the sample's generator."""
    from app.sample_scenarios import generate

    return [sc.record["messages"] for sc in generate(PRETRAIN_CONVERSATIONS, PRETRAIN_SEED)]


def call_phrases(tools: list[Any]) -> list[str]:
    """The fixed text of a call of each tool, as the template writes it: its opening up to the
    first argument's value, and each further argument's key. BPE cannot merge across JSON
    punctuation, so a call's opening would be some twenty tokens, each a chance for a sampled
    (temperature 1) completion of a tiny model to go astray; as one token per tool it is one
    choice, as in tokenizers that give tool calls their own tokens."""
    from transformers.utils import get_json_schema

    out: list[str] = []
    for tool in tools:
        fn = get_json_schema(tool)["function"]
        params = list(fn["parameters"]["properties"])
        out.append(f'{{"name": "{fn["name"]}", "arguments": {{"{params[0]}": ')
        out += [f', "{p}": ' for p in params[1:]]
    return sorted(set(out))


def train_tokenizer(texts: list[str], vocab_size: int, phrases: list[str] = ()):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        model_max_length=2048,
    )
    fast.add_tokens([AddedToken(p, normalized=False) for p in phrases])
    fast.chat_template = CHAT_TEMPLATE
    return fast


def rendered(tok, convs: list[list[dict[str, Any]]], tools: list[Any]) -> list[str]:
    """The conversations as the chat template writes them, special tokens left out (the
    tokenizer's merges then cover the tool block and the call syntax)."""
    out = []
    for msgs in convs:
        text = tok.apply_chat_template(msgs, tools=tools, tokenize=False)
        for special in SPECIAL:
            text = text.replace(special, "\n")
        out.append(text)
    return out


def example(tok, msgs: list[dict[str, Any]], tools: list[Any]) -> tuple[list[int], list[int]]:
    """Token ids of one conversation and its labels: the assistant turns' tokens (their
    content, tool calls and closing <|im_end|>), -100 elsewhere. The system turn is mostly the
    same tool block in every example and the tool results are the environment's to write:
    learning them would spend the short budget on text the model never has to produce."""
    ids: list[int] = []
    labels: list[int] = []
    prev = ""
    head = "<|im_start|>assistant\n"
    for i, m in enumerate(msgs):
        text = tok.apply_chat_template(msgs[: i + 1], tools=tools, tokenize=False)
        piece, prev = text[len(prev) :], text
        if m["role"] == "assistant":
            h = tok(head, add_special_tokens=False)["input_ids"]
            body = tok(piece[len(head) :], add_special_tokens=False)["input_ids"]
            ids += h + body
            labels += [-100] * len(h) + body
        else:
            part = tok(piece, add_special_tokens=False)["input_ids"]
            ids += part
            labels += [-100] * len(part)
    return ids, labels


def pretrain(model, tok, steps: int, tools: list[Any], log=print) -> None:
    """A short seeded AdamW run (warm-up, then linear decay) on the assistant tokens."""
    import torch

    data = [example(tok, msgs, tools) for msgs in conversations()]
    rng = random.Random(0)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 10) * max(0.05, 1 - s / steps)
    )
    order: list[int] = []
    model.train()
    for step in range(1, steps + 1):
        if len(order) < BATCH:
            order += rng.sample(range(len(data)), len(data))
        batch = [data[order.pop()] for _ in range(BATCH)]
        width = max(len(ids) for ids, _ in batch)
        pad = tok.pad_token_id
        loss = model(
            input_ids=torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in batch]),
            attention_mask=torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in batch]),
            labels=torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch]),
        ).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % 50 == 0 or step == steps:
            log(f"pre-training step {step}/{steps}: loss {loss.item():.3f}")
    model.eval()


def build(
    out_dir: str | Path, vocab_size: int = 1024, steps: int = PRETRAIN_STEPS, log=print
) -> Path:
    """Write the demo model and tokenizer to `out_dir`; `steps` > 0 pre-trains it (above)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = corpus()
    fast = train_tokenizer(texts, vocab_size)
    if steps > 0:  # merges over the rendered agent conversations too, and the call tokens
        tools = sample_tools()
        texts += rendered(fast, conversations(), tools)
        fast = train_tokenizer(texts, vocab_size, call_phrases(tools))
    fast.save_pretrained(out)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        bos_token_id=None,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = fast.eos_token_id
    model.generation_config.pad_token_id = fast.pad_token_id
    if steps > 0:
        pretrain(model, fast, steps, tools, log)
    model.save_pretrained(out)
    return out
